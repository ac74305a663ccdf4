//! Helpers for the command API's end-to-end tests: the real router served on 127.0.0.1:0 over a
//! fresh [`TestStore`], and a small JSON client.

use command_api::App;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::TestStore;

/// Runs each named test (an `async fn(TestApi)`) against PostgreSQL and SQLite.
#[macro_export]
macro_rules! api_tests {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::api::TestApi::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::api::TestApi::sqlite().await).await;
                }
            )*
        }
    };
}

/// A running command API over a fresh database.
pub struct TestApi {
    /// The database (dropped with the API).
    pub test: TestStore,
    /// The built app (its state gives direct access, e.g. to register an admin).
    pub app: App,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// An answer: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
}

impl Answer {
    /// The first error's `(message, field)`; panics when the body is not an error body.
    pub fn error(&self) -> (String, Option<String>) {
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("not an error body: {}", self.body));
        assert_eq!(errors.len(), 1, "one error expected: {}", self.body);
        (
            errors[0]["message"]
                .as_str()
                .expect("message is a string")
                .to_owned(),
            errors[0]["field"].as_str().map(str::to_owned),
        )
    }

    /// The `ETag` header.
    pub fn etag(&self) -> Option<&str> {
        self.headers.get("etag").and_then(|v| v.to_str().ok())
    }
}

/// A registered account with its tokens.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account id.
    pub id: String,
    /// The e-mail it registered with.
    pub email: String,
    /// The password.
    pub password: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh: String,
}

impl TestApi {
    /// The API over a fresh PostgreSQL database.
    pub async fn postgres() -> Self {
        Self::start(TestStore::postgres().await).await
    }

    /// The API over a fresh SQLite database.
    pub async fn sqlite() -> Self {
        Self::start(TestStore::sqlite().await).await
    }

    /// Builds the app from `test`'s settings and serves it on 127.0.0.1:0.
    pub async fn start(mut test: TestStore) -> Self {
        // The concurrency tests race 50 writers on one aggregate; the default 20 retries can
        // run out before the last one wins.
        test.settings.command_retries = test.settings.command_retries.max(100);
        let store = eventstore_config::Store::open(&test.settings)
            .await
            .expect("open the store");
        let app = command_api::build(test.settings.clone(), store)
            .await
            .expect("build the command API");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(command_api::serve(listener, app.router(), async {
            let _ = rx.await;
        }));
        Self {
            test,
            app,
            base,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// The store the API writes to.
    pub fn store(&self) -> &eventstore_config::Store {
        self.app.state().store()
    }

    /// Sends `method path` with an optional bearer token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        Self::answer(response).await
    }

    /// Sends a raw body (for malformed JSON and oversized bodies).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await.expect("request sent")).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST path` with a token and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    /// Registers a new account with `role` (`customer` or `seller`); panics unless 201.
    pub async fn register(&self, role: &str) -> Account {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        let body = json!({"email": email, "password": password, "name": "Test", "role": role});
        // A 503 with Retry-After (every password-hashing slot busy) asks the client to come
        // back, as a well-behaved client does: many tests register at once on 2 cores.
        let mut answer = self.post("/api/v1/accounts", None, body.clone()).await;
        for _ in 0..30 {
            if answer.status != StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            let wait = answer
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a 503 says when to retry");
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            answer = self.post("/api/v1/accounts", None, body.clone()).await;
        }
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        Account {
            id: answer.body["account_id"].as_str().expect("id").to_owned(),
            email,
            password,
            token: answer.body["access_token"]
                .as_str()
                .expect("token")
                .to_owned(),
            refresh: answer.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        }
    }

    /// Registers an admin the way the CLI does, and returns it with tokens.
    pub async fn admin(&self) -> Account {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        let password = "admin password 1".to_owned();
        let state = self.app.state();
        let registered = application::accounts::register(
            state.app(),
            &application::Origin::default(),
            application::accounts::Registration {
                email: domain::Email::parse(&email).expect("email"),
                name: domain::Name::parse("Admin").expect("name"),
                password: password.clone(),
                role: domain::account::Role::Admin,
            },
            None,
        )
        .await
        .expect("register the admin");
        let id = registered.account_id.to_string();
        let tokens = state.tokens().issue(&id).expect("tokens");
        Account {
            id,
            email,
            password,
            token: tokens.access_token,
            refresh: tokens.refresh_token,
        }
    }

    /// Creates a product as `seller` priced `price` EUR with `stock`; returns its id.
    pub async fn product(&self, seller: &Account, price: i64, stock: u32) -> String {
        let answer = self
            .post(
                "/api/v1/products",
                Some(&seller.token),
                json!({"name": "Teapot", "description": "Blue", "price": price,
                       "currency": "EUR", "stock": stock}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["product_id"].as_str().expect("id").to_owned()
    }

    /// Places an order as `customer` for `items` (product id, quantity) in `currency`; returns
    /// its id.
    pub async fn order(&self, customer: &Account, items: &[(&str, u32)], currency: &str) -> String {
        let items: Vec<_> = items
            .iter()
            .map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}))
            .collect();
        let answer = self
            .post(
                "/api/v1/orders",
                Some(&customer.token),
                json!({"items": items, "currency": currency}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
        answer.body["order_id"]
            .as_str()
            .expect("order id")
            .to_owned()
    }
}

/// Another API process's worth of state and server over the same database (its own policy
/// cache and follower), for cross-process propagation tests.
pub struct OtherServer {
    /// Its app.
    pub app: App,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    server: JoinHandle<std::io::Result<()>>,
}

impl Drop for OtherServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApi {
    /// Builds and serves a second, independent app over the same database.
    pub async fn other_server(&self) -> OtherServer {
        let store = eventstore_config::Store::open(&self.test.settings)
            .await
            .expect("open the store");
        let app = command_api::build(self.test.settings.clone(), store)
            .await
            .expect("build the second API");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(command_api::serve(
            listener,
            app.router(),
            std::future::pending::<()>(),
        ));
        OtherServer { app, base, server }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
