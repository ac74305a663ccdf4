//! The eventshop read side: the async-graphql schema at `/graphql` over the projectors' read
//! models, with temporal (`asOf` from history rows, `atVersion` folded from the log), history
//! and audit queries, ACL-filtered answers, and read-your-writes via `X-Min-Position`. May
//! depend on `domain`, `eventstore-config`, `read-models` (the typed reads) and `access` (the
//! authenticator shared with the REST API), never on the write side or the projectors.
//!
//! ```no_run
//! # async fn run(settings: eventstore_config::Settings, store: eventstore_config::Store) -> anyhow::Result<axum::Router> {
//! let authenticator = access::Authenticator::load(&settings, &store).await?;
//! let _follower = authenticator.follow(); // keep it while serving: it learns of deletions
//! let api = query_api::build(store, authenticator);
//! Ok(api.router()) // merge beside the REST routes
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
mod budget;
pub mod consistency;
mod db;
mod documents;
pub mod error;
mod fold;
pub mod graphiql;
pub mod history;
pub mod http;
mod input_text;
mod loaders;
pub mod query;
pub mod reads;
mod request;
pub mod shape;
pub mod subscription;
mod subscription_follower;
pub mod subscription_ws;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{EmptyMutation, Schema};
use eventstore_config::Store;

pub use access::{AuthError, Authenticator};
pub use auth::Caller;
pub use db::statements_run;
pub use error::Code;
pub use reads::{audit, AuditFilter};
pub use types::AuditEntry;

/// The schema type.
pub type QuerySchema = Schema<query::Query, EmptyMutation, subscription::Subscription>;

/// Limits and waits.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deepest selection accepted (introspection's `ofType` does not count: see [`shape`]).
    pub max_depth: usize,
    /// Largest complexity accepted (a list field counts `first` times its selection).
    pub max_complexity: usize,
    /// How long a request with `X-Min-Position` waits for the projectors.
    pub max_wait: Duration,
    /// Largest request body (the `max_body_bytes` setting); larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests executing at once; more wait for their turn (within `request_timeout`). `None`:
    /// half the connection pool (at least 1), so projectors and the saga keep connections.
    pub max_concurrent_requests: Option<usize>,
    /// How long a request may wait for its turn and run, in all; then 503.
    pub request_timeout: Duration,
    /// Read-model statements one request may run.
    pub max_statements: usize,
    /// Statements of one request running at once.
    pub max_statements_in_flight: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 5_000,
            max_wait: Duration::from_secs(2),
            max_body_bytes: 64 * 1024,
            max_concurrent_requests: None,
            request_timeout: Duration::from_secs(10),
            max_statements: 500,
            max_statements_in_flight: 1,
        }
    }
}

/// A built query API: cheap to clone.
#[derive(Clone)]
pub struct QueryApi {
    schema: QuerySchema,
    store: Store,
    authenticator: Authenticator,
    options: Options,
    policies: Arc<auth::PolicyVersions>,
    documents: Arc<documents::DocumentCache>,
    running: Arc<tokio::sync::Semaphore>,
    follower: Arc<subscription_follower::LazyFollower>,
    subscriptions: prometheus_client::metrics::gauge::Gauge,
}

impl std::fmt::Debug for QueryApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryApi")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The schema with its limits (no data: requests carry it).
pub fn schema(options: &Options) -> QuerySchema {
    // The depth limit is `shape::check`'s, run before execution: async-graphql's would count
    // introspection's `ofType` and refuse the standard introspection query.
    Schema::build(query::Query, EmptyMutation, subscription::Subscription)
        .limit_complexity(options.max_complexity)
        .finish()
}

/// The schema in SDL, as exported to `query-api/schema.graphql`.
pub fn sdl() -> String {
    schema(&Options::default()).sdl()
}

/// Builds the query API over a migrated `store` with the default [`Options`].
pub fn build(store: Store, authenticator: Authenticator) -> QueryApi {
    build_with(store, authenticator, Options::default())
}

/// Builds the query API with explicit options.
pub fn build_with(store: Store, authenticator: Authenticator, options: Options) -> QueryApi {
    let pool_size = store.max_connections() as usize;
    let running = options
        .max_concurrent_requests
        .unwrap_or(pool_size / 2)
        .max(1);
    QueryApi {
        schema: schema(&options),
        store,
        authenticator,
        options,
        policies: Arc::default(),
        documents: Arc::default(),
        running: Arc::new(tokio::sync::Semaphore::new(running)),
        follower: Arc::default(),
        subscriptions: Default::default(),
    }
}

impl QueryApi {
    /// `/graphql` (POST queries, GET GraphiQL), ready to merge into another router.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// The same API with another request body limit (the `max_body_bytes` setting).
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.options.max_body_bytes = max_body_bytes;
        self
    }

    /// Subscriptions open now (over every WebSocket connection).
    pub fn open_subscriptions(&self) -> i64 {
        self.subscriptions.get()
    }

    /// A registry (prefix `eventshop`) with `eventshop_graphql_subscriptions_open`, for
    /// `/metrics`.
    pub fn metrics_registry(&self) -> prometheus_client::registry::Registry {
        let mut registry = prometheus_client::registry::Registry::with_prefix("eventshop");
        registry.register(
            "graphql_subscriptions_open",
            "GraphQL subscriptions open now over /graphql/ws",
            self.subscriptions.clone(),
        );
        registry
    }

    /// Runs one GraphQL request in process as the authenticated `subject` (an account id the
    /// caller has already authenticated, e.g. the console's session): the same schema, ACL
    /// checks and statement budget as `POST /graphql`, without HTTP.
    pub async fn execute_as(
        &self,
        subject: &str,
        request: async_graphql::Request,
    ) -> async_graphql::Response {
        let session = auth::Session::new(
            auth::Credentials::Subject(subject.to_owned()),
            self.policies.clone(),
        );
        let budget = budget::Budget::new(
            self.options.max_statements,
            self.options.max_statements_in_flight,
        );
        let request = request.data(request::RequestData::new(
            self.store.clone(),
            session,
            budget.clone(),
        ));
        budget::within(budget, self.schema.execute(request)).await
    }

    /// The store it reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

/// The `router` of [`build`].
pub fn router(store: Store, authenticator: Authenticator) -> axum::Router {
    build(store, authenticator).router()
}
