//! The eventshop write side: the axum REST API under `/api/v1` (auth, ACL authorization,
//! idempotency, `If-Match` concurrency, OpenAPI, metrics) dispatching commands through the
//! `eventstore-config` command bus. May depend on `domain` and `eventstore-config`, never on the
//! read side (`projectors`, `query-api`).
//!
//! ```no_run
//! # async fn run(settings: eventstore_config::Settings, store: eventstore_config::Store) -> anyhow::Result<()> {
//! let app = command_api::build(settings, store).await?;
//! let router = app.router(); // merge other routers here
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! command_api::serve(listener, router, command_api::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod authz;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod housekeeping;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod respond;
pub mod state;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use eventstore_config::{Settings, Store};
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use state::AppState;
pub use web::{serve, serve_with, shutdown_signal, ServeLimits};

/// A built command API: its state and its background tasks (the policy-cache follower, the
/// housekeeping sweeps), stopped when it is dropped.
#[derive(Debug)]
pub struct App {
    state: AppState,
    follower: JoinHandle<()>,
    housekeeping: Option<JoinHandle<()>>,
}

/// Builds the command API over a migrated `store`: loads (or generates) the signing key and
/// starts the policy-cache follower and the housekeeping sweeps ([`housekeeping`]).
pub async fn build(settings: Settings, store: Store) -> anyhow::Result<App> {
    let state = AppState::new(settings, store.clone()).await?;
    let follower = tokio::spawn(state.cache().clone().follow(store));
    let housekeeping = housekeeping::spawn(state.clone());
    Ok(App {
        state,
        follower,
        housekeeping,
    })
}

impl App {
    /// The shared state (the CLI registers admins through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The REST routes (`/api/v1/...`, `/healthz`, `/metrics`), with metrics, idempotency and
    /// the body limit applied. Merge other routers (e.g. GraphQL) into it.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.follower.abort();
        if let Some(housekeeping) = &self.housekeeping {
            housekeeping.abort();
        }
    }
}

/// The routes over `state`. Routes that need a caller authenticate it before anything else
/// (path ids, headers, the body): a request without a valid token is a 401 first.
pub fn router(state: AppState) -> Router {
    use handlers::{accounts, orders, policies, products, sessions};
    let authenticated = Router::new()
        .route("/accounts/{id}", delete(accounts::delete_account))
        .route("/accounts/{id}/deposits", post(accounts::deposit))
        .route("/products", post(products::create))
        .route("/products/{id}", patch(products::patch))
        .route("/products/{id}/restock", post(products::restock))
        .route("/orders", post(orders::place))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route(
            "/policies",
            axum::routing::put(policies::put).delete(policies::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_first,
        ));
    let open = Router::new()
        .route("/accounts", post(accounts::register))
        .route("/sessions", post(sessions::login))
        .route("/sessions/refresh", post(sessions::refresh))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }));
    let api = authenticated
        .merge(open)
        .method_not_allowed_fallback(method_not_allowed);
    let metrics = state.metrics().clone();
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(handlers::healthz))
        .route(
            "/metrics",
            get(metrics::metrics_handler).with_state(metrics.clone()),
        )
        .fallback(|| async { ApiError::not_found("no such route", None) })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::record,
        ))
        .with_state(state)
}

/// Middleware on every command route: a body whose declared `Content-Length` is over
/// `max_body_bytes` is a 413 whether or not the route reads a body (a route that reads one also
/// stops a larger body that streams in without a length).
async fn refuse_declared_oversize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.settings().max_body_bytes;
    if web::body::declared_over(request.headers(), limit) {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    next.run(request).await
}

/// Middleware on the routes that need a caller: authenticates it (the `Caller` extractor's
/// check) before idempotency, path ids, headers or the body are looked at.
async fn authenticate_first(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match authz::Caller::from_request_parts(&mut parts, &state).await {
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(rejection) => rejection.into_response(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this route does not accept that method".into())
}
