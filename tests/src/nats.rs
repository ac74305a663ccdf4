//! A NATS JetStream server of a test's own: `nats-server -js` on a free port with its store in
//! a temporary folder, killed when dropped. A test can stop it and start it again on the same
//! port and store. Panics (failing the test loudly) when `nats-server` is not installed: these
//! tests never skip. `NATS_SERVER` names another binary.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) `nats-server -js`.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and an empty store.
    pub fn start() -> Self {
        let dir = std::env::temp_dir()
            .join("eventshop-tests")
            .join(format!("nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the NATS store folder");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
        };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again (same port, same store) and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the NATS server is already running");
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(&binary)
                .args([
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-sd",
                ])
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start `{binary}` ({e}): install it (apt-get install nats-server) \
                         or set NATS_SERVER; the relay tests never skip"
                    )
                });
            // Up once it accepts TCP; it may also exit at once if the port is still held.
            loop {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    // JetStream comes up just after the listener.
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "nats-server did not listen on {}",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "nats-server kept exiting at start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server gracefully (SIGTERM: it flushes its store) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message as it is stored in the stream.
#[derive(Debug, Clone)]
pub struct Received {
    /// The stream sequence (1, 2, …: the order of the stream).
    pub sequence: u64,
    /// The subject.
    pub subject: String,
    /// Every header (the last value of each name).
    pub headers: HashMap<String, String>,
    /// The body as JSON.
    pub body: serde_json::Value,
}

impl Received {
    /// A header's value; panics when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("message {} has no {name} header", self.sequence))
    }
}

/// Every message of `stream` on the server at `url`, in stream order.
pub async fn read_stream(url: &str, stream: &str) -> Vec<Received> {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let mut handle = jetstream.get_stream(stream).await.expect("the stream");
    let state = handle.info().await.expect("stream info").state.clone();
    let mut out = Vec::with_capacity(state.messages as usize);
    for sequence in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let message = handle.get_raw_message(sequence).await.expect("a message");
        let headers = message
            .headers
            .iter()
            .filter_map(|(name, values)| {
                values
                    .last()
                    .map(|v| (name.to_string(), v.as_str().to_owned()))
            })
            .collect();
        out.push(Received {
            sequence: message.sequence,
            subject: message.subject.to_string(),
            headers,
            body: serde_json::from_slice(&message.payload).expect("a JSON body"),
        });
    }
    out
}

/// How many messages `stream` holds (0 while it does not exist).
pub async fn stream_count(url: &str, stream: &str) -> u64 {
    let Ok(client) = async_nats::connect(url).await else {
        return 0;
    };
    let jetstream = async_nats::jetstream::new(client);
    match jetstream.get_stream(stream).await {
        Ok(mut handle) => handle.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}
