//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and the
//! older `graphql-ws` subprotocol). The token goes in `connection_init` as
//! `{"Authorization": "Bearer <token>"}`, checked by the shared authenticator; a refused one
//! closes the socket with 4403 (Forbidden). Each subscription document passes the same text
//! rule and shape limits as queries before it runs.

use std::sync::Arc;

use async_graphql::futures_util::{stream, SinkExt, StreamExt};
use async_graphql::{Data, Executor, Request, Response, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::IntoResponse;

use crate::error::Code;
use crate::subscription::{Live, Token};
use crate::QueryApi;

/// The path of the WebSocket endpoint.
pub const PATH: &str = "/graphql/ws";

/// The reason prefix of a refused `connection_init` (rewritten to close code 4403).
const REFUSED: &str = "Forbidden: ";

/// Runs subscription documents after the same checks as queries.
#[derive(Clone)]
pub(crate) struct Checked(pub(crate) QueryApi);

impl Executor for Checked {
    async fn execute(&self, request: Request) -> Response {
        // Queries and mutations over the socket are not served: use POST /graphql.
        let _ = request;
        let mut error = ServerError::new("use POST /graphql for queries", None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", Code::BadUserInput.as_str());
        error.extensions = Some(extensions);
        Response::from_errors(vec![error])
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> async_graphql::futures_util::stream::BoxStream<'static, Response> {
        let api = &self.0;
        let variables = std::mem::take(&mut request.variables);
        let refused = match request.parsed_query() {
            Ok(document) => {
                let mut refused = crate::input_text::check(document, &variables);
                if let Err(shape) = crate::shape::check(document, api.options.max_depth) {
                    refused.push(ServerError::new(shape.to_string(), None));
                }
                refused
            }
            Err(_) => Vec::new(), // the executor reports the syntax error
        };
        request.variables = variables;
        if !refused.is_empty() {
            return stream::once(async move { coded(Response::from_errors(refused)) }).boxed();
        }
        let live = Live {
            store: api.store.clone(),
            authenticator: api.authenticator.clone(),
            follower: api.follower.get(&api.store),
        };
        let request = request.data(live);
        let gauge = api.subscriptions.clone();
        gauge.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let open = OpenSubscription(gauge);
        api.schema
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(move |response| {
                let _ = &open;
                coded(response)
            })
            .boxed()
    }
}

/// Counts an open subscription while alive.
struct OpenSubscription(Arc<std::sync::atomic::AtomicI64>);

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Every error with an `extensions.code` (parse, validation and limit errors have none).
fn coded(mut response: Response) -> Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Code::BadUserInput.as_str());
        }
    }
    response
}

/// The upgrade handler.
pub(crate) async fn upgrade(
    State(api): State<QueryApi>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            // async-graphql closes a refused init with 1002; the protocol says 4403.
            let sink = sink.with(|message: Message| async move {
                Ok::<_, axum::Error>(match message {
                    Message::Close(Some(frame)) if frame.reason.starts_with(REFUSED) => {
                        Message::Close(Some(CloseFrame {
                            code: 4403,
                            reason: frame.reason.as_str()[REFUSED.len()..].into(),
                        }))
                    }
                    other => other,
                })
            });
            let authenticator = api.authenticator.clone();
            GraphQLWebSocket::new_with_pair(sink, stream, Checked(api), protocol)
                .on_connection_init(move |payload| init(authenticator, payload))
                .serve()
                .await
        })
        .into_response()
}

/// Checks the `connection_init` payload's token; its `Authorization` value is kept for the
/// streams, which re-check it.
async fn init(
    authenticator: access::Authenticator,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let refuse = |why: String| async_graphql::Error::new(format!("{REFUSED}{why}"));
    let authorization = match &payload {
        serde_json::Value::Null => None,
        serde_json::Value::Object(fields) => match fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v)
        {
            None => None,
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(refuse("Authorization must be a string".into())),
        },
        _ => {
            return Err(refuse(
                "the connection_init payload must be an object".into(),
            ))
        }
    };
    let value = match &authorization {
        None => None,
        Some(text) => Some(
            HeaderValue::from_str(text)
                .map_err(|_| refuse("the Authorization value is not valid".into()))?,
        ),
    };
    match authenticator.authenticate(value.as_ref()).await {
        Ok(_) => {}
        Err(access::AuthError::Missing) => {
            return Err(refuse(
                "send {\"Authorization\": \"Bearer <access token>\"} in connection_init".into(),
            ))
        }
        Err(access::AuthError::Invalid(why)) => return Err(refuse(why)),
        Err(access::AuthError::Unavailable(cause)) => {
            tracing::error!(
                error = format!("{cause:#}"),
                "authenticating a subscriber failed"
            );
            return Err(async_graphql::Error::new("internal error"));
        }
    }
    let mut data = Data::default();
    data.insert(Token(authorization));
    Ok(data)
}
