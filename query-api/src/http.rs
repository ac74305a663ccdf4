//! The HTTP face: `POST /graphql` (bearer token, optional `X-Min-Position`) and GraphiQL on
//! `GET /graphql`.

use async_graphql::http::GraphiQLSource;
use async_graphql::{ErrorExtensionValues, Response, ServerError, Value};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::auth::{Credentials, Session};
use crate::error::Code;
use crate::request::RequestData;
use crate::QueryApi;

/// The read-your-writes header: a global position the answer must include.
pub const MIN_POSITION_HEADER: &str = "x-min-position";

/// `/graphql` over `api`.
pub fn router(api: QueryApi) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .with_state(api)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// The caller as the shared authenticator sees it (the same rules as the REST API's).
async fn credentials(api: &QueryApi, headers: &HeaderMap) -> Credentials {
    Credentials::of(api.authenticator.authenticate_headers(headers).await)
}

fn request_error(code: Code, message: String) -> Response {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    Response::from_errors(vec![error])
}

async fn graphql(
    State(api): State<QueryApi>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> axum::response::Response {
    let mut consistency = None;
    if let Some(value) = headers.get(MIN_POSITION_HEADER) {
        let Some(position) = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|p| *p >= 0)
        else {
            let response = request_error(
                Code::BadUserInput,
                "X-Min-Position must be a non-negative integer (a command's `position`)".into(),
            );
            return (StatusCode::BAD_REQUEST, GraphQLResponse::from(response)).into_response();
        };
        let reached =
            match crate::consistency::wait_for(&api.store, position, api.options.max_wait).await {
                Ok(reached) => reached,
                Err(error) => {
                    tracing::error!(%error, "checking projection checkpoints failed");
                    let response = request_error(Code::Internal, "internal error".into());
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        GraphQLResponse::from(response),
                    )
                        .into_response();
                }
            };
        consistency = Some((position, reached));
    }
    let session = Session::new(credentials(&api, &headers).await, api.policies.clone());
    let mut request = request.into_inner();
    api.documents.prepare(&mut request);
    let request = request.data(RequestData::new(api.store.clone(), session));
    let mut response = api.schema.execute(request).await;
    for error in &mut response.errors {
        // Parse, validation and limit errors carry no code of their own.
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Code::BadUserInput.as_str());
        }
    }
    if let Some((position, reached)) = consistency {
        let mut value = async_graphql::indexmap::IndexMap::new();
        value.insert(
            async_graphql::Name::new("minPosition"),
            Value::from(position),
        );
        value.insert(async_graphql::Name::new("reached"), Value::from(reached));
        response = response.extension("consistency", Value::Object(value));
    }
    GraphQLResponse::from(response).into_response()
}
