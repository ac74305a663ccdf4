//! The HTTP face of `/graphql`: `POST` with a JSON body (`{"query", "variables"?,
//! "operationName"?}`), `GET` with the same as URL parameters (no parameters: GraphiQL, offline: [`crate::graphiql`]), a
//! bearer token and optional `X-Min-Position`.
//!
//! Whatever goes wrong before execution is answered in the GraphQL error shape
//! (`{"errors":[{"message","extensions":{"code"}}]}`), never as plain text: a body over
//! `max_body_bytes` (413), a content type other than JSON (415), an empty body, bad JSON, a
//! batch (a JSON array: not supported, one operation per request), bad URL parameters (400),
//! another method (405); a request that waits too long for its turn or runs past the
//! timeout is a 503 `SERVICE_UNAVAILABLE` with `Retry-After`. Before a request runs, its
//! text arguments and variables are checked ([`crate::input_text`]) and its shape
//! ([`crate::shape`]); then it runs with its statement budget ([`crate::budget`]).

use std::collections::HashMap;
use std::time::Instant;

use async_graphql::{ErrorExtensionValues, Request, Response, ServerError, Value, Variables};
use async_graphql_axum::GraphQLResponse;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::auth::{Credentials, Session};
use crate::error::Code;
use crate::request::RequestData;
use crate::QueryApi;

/// The read-your-writes header: a global position the answer must include.
pub const MIN_POSITION_HEADER: &str = "x-min-position";

/// `/graphql` over `api`, with its own body limit (it holds alone and merged beside REST).
pub fn router(api: QueryApi) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql_get).post(graphql_post).fallback(other_method),
        )
        .route_layer(axum::middleware::from_fn(negotiate))
        .route(crate::graphiql::ASSETS_PATH, get(crate::graphiql::asset))
        .route(
            crate::subscription_ws::PATH,
            get(crate::subscription_ws::upgrade),
        )
        .with_state(api)
}

/// GraphQL over HTTP: answers are `application/graphql-response+json` when the client accepts
/// it, else `application/json` (also when it sends no `Accept`).
async fn negotiate(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let wants_graphql_response = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE));
    let mut response = next.run(request).await;
    let is_graphql_response = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(GRAPHQL_RESPONSE.as_bytes()));
    if is_graphql_response && !wants_graphql_response {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The caller as the shared authenticator sees it (the same rules as the REST API's).
async fn credentials(api: &QueryApi, headers: &HeaderMap) -> Credentials {
    Credentials::of(api.authenticator.authenticate_headers(headers).await)
}

/// An answer in the GraphQL error shape with `status`.
fn rejected(
    status: StatusCode,
    code: Code,
    message: impl Into<String>,
) -> axum::response::Response {
    let mut error = ServerError::new(message.into(), None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    let mut response = (
        status,
        GraphQLResponse::from(Response::from_errors(vec![error])),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn bad_request(message: impl Into<String>) -> axum::response::Response {
    rejected(StatusCode::BAD_REQUEST, Code::BadUserInput, message)
}

async fn other_method() -> axum::response::Response {
    let mut response = rejected(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::BadUserInput,
        "use POST /graphql with a JSON body, or GET /graphql?query=…",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// `GET /graphql`: GraphiQL without parameters, else the query in `query`, `variables` (JSON)
/// and `operationName`.
async fn graphql_get(
    State(api): State<QueryApi>,
    headers: HeaderMap,
    parameters: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> axum::response::Response {
    let Query(parameters) = match parameters {
        Ok(parameters) => parameters,
        Err(e) => return bad_request(format!("the URL parameters do not parse: {e}")),
    };
    let Some(query) = parameters.get("query") else {
        if parameters.is_empty() {
            return crate::graphiql::page();
        }
        return bad_request("GET /graphql needs a `query` parameter (or none at all: GraphiQL)");
    };
    let mut request = Request::new(query.clone());
    request.operation_name = parameters.get("operationName").cloned();
    if let Some(variables) = parameters.get("variables") {
        match serde_json::from_str::<serde_json::Value>(variables) {
            Ok(value @ serde_json::Value::Object(_)) => {
                request.variables = Variables::from_json(value)
            }
            Ok(serde_json::Value::Null) => {}
            Ok(_) => return bad_request("`variables` must be a JSON object"),
            Err(e) => return bad_request(format!("`variables` is not JSON: {e}")),
        }
    }
    execute(api, headers, request).await
}

/// `POST /graphql` with one JSON request.
async fn graphql_post(
    State(api): State<QueryApi>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let limit = api.options.max_body_bytes;
    if !headers.get(header::CONTENT_TYPE).is_some_and(is_json) {
        return rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::BadUserInput,
            "send the request as Content-Type: application/json",
        );
    }
    let too_large = || {
        rejected(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BadUserInput,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if web::body::declared_over(&headers, limit) {
        return too_large();
    }
    let bytes = match web::body::read_limited(body, limit).await {
        Ok(bytes) => bytes,
        Err(web::body::BodyError::TooLarge { .. }) => return too_large(),
        Err(e) => return bad_request(e.to_string()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return bad_request(r#"the body is empty: send a JSON object {"query": "…"}"#);
    }
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => return bad_request(format!("the body is not one JSON value: {e}")),
    };
    let request = match value {
        serde_json::Value::Array(_) => {
            return bad_request(
                "batched requests (a JSON array) are not supported: send one operation per request",
            )
        }
        object @ serde_json::Value::Object(_) => match serde_json::from_value::<Request>(object) {
            Ok(request) => request,
            Err(e) => return bad_request(format!("not a GraphQL request: {e}")),
        },
        _ => return bad_request(r#"the body must be a JSON object {"query": "…"}"#),
    };
    execute(api, headers, request).await
}

/// `application/json` or any `application/*+json`, with parameters.
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn execute(
    api: QueryApi,
    headers: HeaderMap,
    mut request: Request,
) -> axum::response::Response {
    if request.query.trim().is_empty() {
        return bad_request(r#"the request has no query: send {"query": "…"}"#);
    }
    // The request is checked before it takes a turn: a refused one costs no connection.
    let mut min_position = None;
    if let Some(value) = headers.get(MIN_POSITION_HEADER) {
        let Some(position) = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|p| *p >= 0)
        else {
            return bad_request(
                "X-Min-Position must be a non-negative integer (a command's `position`)",
            );
        };
        min_position = Some(position);
    }
    api.documents.prepare(&mut request);
    let variables = std::mem::take(&mut request.variables);
    let checked = request.parsed_query().ok().map(|document| {
        let mut refused = crate::input_text::check(document, &variables);
        if let Err(shape) = crate::shape::check(document, api.options.max_depth) {
            refused.push(ServerError::new(shape.to_string(), None));
        }
        refused
    });
    request.variables = variables;
    if let Some(refused) = checked.filter(|r| !r.is_empty()) {
        return finish(Response::from_errors(refused), None);
    }

    let started = Instant::now();
    let timeout = api.options.request_timeout;
    let busy = || {
        rejected(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ServiceUnavailable,
            "too many queries at once: retry later",
        )
    };
    let Ok(Ok(_turn)) = tokio::time::timeout(timeout, api.running.clone().acquire_owned()).await
    else {
        return busy();
    };

    let mut consistency = None;
    if let Some(position) = min_position {
        let reached =
            match crate::consistency::wait_for(&api.store, position, api.options.max_wait).await {
                Ok(reached) => reached,
                Err(error) => {
                    tracing::error!(%error, "checking projection checkpoints failed");
                    return rejected(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Code::Internal,
                        "internal error",
                    );
                }
            };
        consistency = Some((position, reached));
    }

    let session = Session::new(credentials(&api, &headers).await, api.policies.clone());
    let budget = crate::budget::Budget::new(
        api.options.max_statements,
        api.options.max_statements_in_flight,
    );
    let request = request.data(RequestData::new(api.store.clone(), session, budget.clone()));
    let out_of_time = || {
        rejected(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ServiceUnavailable,
            format!(
                "the query ran longer than {} s: ask for less in one request",
                timeout.as_secs_f32()
            ),
        )
    };
    let left = timeout.saturating_sub(started.elapsed());
    if left.is_zero() {
        return out_of_time();
    }
    let run = crate::budget::within(budget, api.schema.execute(request));
    match tokio::time::timeout(left, run).await {
        Ok(response) => finish(response, consistency),
        Err(_) => out_of_time(),
    }
}

fn finish(mut response: Response, consistency: Option<(i64, bool)>) -> axum::response::Response {
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
