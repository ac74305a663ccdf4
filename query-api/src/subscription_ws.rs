//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and the
//! older `graphql-ws` subprotocol). The token goes in `connection_init` as
//! `{"Authorization": "Bearer <token>"}`, checked by the shared authenticator; a refused one
//! closes the socket with 4403 (Forbidden). Each subscription document passes the same text
//! rule and shape limits as queries before it runs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use prometheus_client::metrics::gauge::Gauge;

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

/// Subscriptions one connection may hold open at once.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: i64 = 100;

/// Runs one connection's subscription documents after the same checks as queries.
#[derive(Clone)]
pub(crate) struct Checked {
    api: QueryApi,
    /// This connection's open subscriptions.
    open: Arc<AtomicI64>,
}

impl Executor for Checked {
    async fn execute(&self, request: Request) -> Response {
        // Queries and mutations over the socket are not served: use POST /graphql.
        let _ = request;
        refusal("only subscriptions are served here: send queries to POST /graphql")
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> async_graphql::futures_util::stream::BoxStream<'static, Response> {
        let api = &self.api;
        let variables = std::mem::take(&mut request.variables);
        let operation_name = request.operation_name.clone();
        let refused = match request.parsed_query() {
            Ok(document) => {
                let mut refused = crate::input_text::check(document, &variables);
                let operation = document
                    .operations
                    .iter()
                    .find(|(name, _)| {
                        operation_name.is_none()
                            || name.map(|n| n.as_str()) == operation_name.as_deref()
                    })
                    .map(|(_, o)| o);
                if operation.is_some_and(|o| o.node.ty != OperationType::Subscription) {
                    refused.push(ServerError::new(
                        "only subscriptions are served here: send queries to POST /graphql",
                        None,
                    ));
                }
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
        if self.open.load(Ordering::Relaxed) >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            return stream::once(async move {
                refusal(format!(
                    "at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection: complete one first"
                ))
            })
            .boxed();
        }
        let request = request.data(live);
        let open = OpenSubscription::new(api.subscriptions.clone(), self.open.clone());
        api.schema
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(move |response| {
                let _ = &open;
                coded(response)
            })
            .boxed()
    }
}

/// Counts an open subscription (in the process's gauge and its connection's count) while
/// alive.
struct OpenSubscription {
    gauge: Gauge,
    connection: Arc<AtomicI64>,
}

impl OpenSubscription {
    fn new(gauge: Gauge, connection: Arc<AtomicI64>) -> Self {
        gauge.inc();
        connection.fetch_add(1, Ordering::Relaxed);
        Self { gauge, connection }
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.gauge.dec();
        self.connection.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A one-error response with `BAD_USER_INPUT`.
fn refusal(message: impl Into<String>) -> Response {
    coded(Response::from_errors(vec![ServerError::new(
        message.into(),
        None,
    )]))
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
            let executor = Checked {
                api,
                open: Arc::default(),
            };
            GraphQLWebSocket::new_with_pair(sink, stream, executor, protocol)
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
