//! A `graphql-transport-ws` client for the subscription tests (over `tokio-tungstenite`).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for one message.
pub const WAIT: Duration = Duration::from_secs(30);

/// One WebSocket connection to `/graphql/ws`.
pub struct WsClient {
    socket: Socket,
}

/// What the server sent next.
#[derive(Debug)]
pub enum Received {
    /// A protocol message (`next`, `error`, `complete`, …).
    Message(Value),
    /// The socket closed with this code and reason.
    Closed(u16, String),
}

impl WsClient {
    /// Connects to `graphql_endpoint`'s `/ws` with the `graphql-transport-ws` subprotocol.
    pub async fn open(graphql_endpoint: &str) -> Self {
        let url = format!("{}/ws", graphql_endpoint.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connects");
        Self { socket }
    }

    /// Sends `connection_init` with `payload` and returns the answer.
    pub async fn init(&mut self, payload: Value) -> Received {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        self.receive().await
    }

    /// Connects and initializes with `token`, expecting `connection_ack`.
    pub async fn connect(graphql_endpoint: &str, token: &str) -> Self {
        let mut client = Self::open(graphql_endpoint).await;
        match client
            .init(json!({"Authorization": format!("Bearer {token}")}))
            .await
        {
            Received::Message(m) if m["type"] == "connection_ack" => client,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables}}))
            .await;
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    /// The next protocol message or close (pings are answered and skipped); panics after
    /// [`WAIT`].
    pub async fn receive(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message within the wait");
            match message {
                None => return Received::Closed(1006, "ended".into()),
                Some(Err(e)) => return Received::Closed(1006, e.to_string()),
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if value["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Received::Message(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Received::Closed(f.code.into(), f.reason.to_string()),
                        None => Received::Closed(1005, String::new()),
                    }
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next protocol message; panics on a close.
    pub async fn message(&mut self) -> Value {
        match self.receive().await {
            Received::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// A query API served on its own port (as another `serve` process's would be).
pub struct QueryServer {
    /// The API (for its subscription gauge).
    pub api: query_api::QueryApi,
    /// `http://127.0.0.1:<port>/graphql`.
    pub endpoint: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl QueryServer {
    /// Serves a query API over `store` with `authenticator` on 127.0.0.1:0.
    pub async fn start(
        store: eventstore_config::Store,
        authenticator: query_api::Authenticator,
    ) -> Self {
        let api = query_api::build(store, authenticator);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}/graphql", listener.local_addr().expect("address"));
        let server = tokio::spawn(command_api::serve(
            listener,
            api.router(),
            std::future::pending::<()>(),
        ));
        Self {
            api,
            endpoint,
            server,
        }
    }
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
