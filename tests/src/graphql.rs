//! Helpers for the GraphQL end-to-end tests: the command API ([`TestApi`]) plus the query API
//! served beside it on its own port over the same store, sharing the command API's
//! authenticator (as `eventshop serve` does); a GraphQL client; and a deterministic "run the
//! projectors until caught up".

use std::time::{Duration, Instant};

use eventstore_config::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::TestApi;

/// Runs each named test (an `async fn(TestGraphql)`) against PostgreSQL and SQLite.
#[macro_export]
macro_rules! graphql_tests {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::graphql::TestGraphql::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::graphql::TestGraphql::sqlite().await).await;
                }
            )*
        }
    };
}

/// The command API and the query API over one fresh database.
pub struct TestGraphql {
    /// The command API (REST) and its database.
    pub api: TestApi,
    /// `http://127.0.0.1:<port>/graphql`.
    pub endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A GraphQL answer: HTTP status and body.
#[derive(Debug)]
pub struct GqlAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body (`data`, `errors`, `extensions`).
    pub body: Value,
}

impl GqlAnswer {
    /// `data`, after checking there are no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of every error.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestGraphql {
    /// Over a fresh PostgreSQL database.
    pub async fn postgres() -> Self {
        Self::start(TestApi::postgres().await, query_api::Options::default()).await
    }

    /// Over a fresh SQLite database.
    pub async fn sqlite() -> Self {
        Self::start(TestApi::sqlite().await, query_api::Options::default()).await
    }

    /// Serves the query API for `api`'s store with `options` on 127.0.0.1:0.
    pub async fn start(api: TestApi, options: query_api::Options) -> Self {
        let authenticator = api.app.state().authenticator().clone();
        let query = query_api::build_with(api.store().clone(), authenticator, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}/graphql", listener.local_addr().expect("address"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(command_api::serve(listener, query.router(), async {
            let _ = rx.await;
        }));
        Self {
            api,
            endpoint,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.api.store()
    }

    /// Posts `query` with `variables`, a bearer token and extra headers.
    pub async fn send(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> GqlAnswer {
        let mut request = self
            .api
            .client
            .post(&self.endpoint)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        GqlAnswer { status, body }
    }

    /// Posts `query` with `variables` as the holder of `token`.
    pub async fn query(&self, token: &str, query: &str, variables: Value) -> GqlAnswer {
        self.send(Some(token), query, variables, &[]).await
    }

    /// Runs every projection until the read models include every event committed so far.
    pub async fn project(&self) {
        let head = self.store().head_position().await.expect("head position");
        project_through(self.store(), head).await;
    }
}

/// Runs every projection (without leases) until each has applied every event at or below
/// `position`. Panics after 60 s (on PostgreSQL the commit-safe reader waits for every older
/// transaction of the cluster, and other test databases share it).
pub async fn project_through(store: &Store, position: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for projection in projectors::read_models::all() {
            projectors::catch_up(store, &*projection, 500)
                .await
                .expect("projection catches up");
        }
        if query_api::consistency::applied_through(store, position)
            .await
            .expect("checkpoints readable")
        {
            return;
        }
        if Instant::now() >= deadline {
            let statuses = projectors::statuses(store).await;
            panic!("projections did not reach position {position}: {statuses:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for TestGraphql {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
