//! The real `eventshop serve` as a child process over a test database: started, SIGKILLed and
//! restarted on the same database, with clients that retry their requests across the crashes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;

use crate::TestStore;

/// Builds the binary once per test process (a no-op when it is up to date) in the profile of
/// the running test or example (`--release` for `cargo run --release --example …`); its path.
pub fn binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let keep = |name: &str| {
                matches!(
                    name,
                    "PATH" | "HOME" | "USER" | "TMPDIR" | "CARGO_HOME" | "CARGO_TARGET_DIR"
                ) || name.starts_with("RUSTUP_")
            };
            let release = (!cfg!(debug_assertions)).then_some("--release");
            let status = Command::new(env!("CARGO"))
                .env_clear()
                .envs(std::env::vars().filter(|(name, _)| keep(name)))
                .args([
                    "build",
                    "--quiet",
                    "--locked",
                    "-p",
                    "eventshop",
                    "--bin",
                    "eventshop",
                ])
                .args(release)
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building eventshop failed");
            let exe = std::env::current_exe().expect("the test binary");
            // target/<profile>/deps/<test> (or examples/<example>) → target/<profile>/eventshop
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("the target folder")
                .join("eventshop")
        })
        .clone()
}

/// A running `eventshop serve` that can be killed and restarted.
pub struct Server {
    url: String,
    child: Mutex<Option<Child>>,
    base: RwLock<String>,
}

fn spawn(url: &str) -> (Child, String) {
    let mut child = Command::new(binary())
        .env("DATABASE_URL", url)
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "error")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("eventshop listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}

impl Server {
    /// Starts `serve` over `test`'s database.
    pub async fn start(test: &TestStore) -> Arc<Self> {
        let url = test.url().to_owned();
        let (child, base) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || spawn(&url)
        })
        .await
        .expect("spawn");
        Arc::new(Self {
            url,
            child: Mutex::new(Some(child)),
            base: RwLock::new(base),
        })
    }

    /// The current base URL (`http://127.0.0.1:port`).
    pub fn base(&self) -> String {
        self.base.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILLs the server and starts a new one on the same database.
    pub async fn kill_and_restart(&self) {
        self.kill();
        let url = self.url.clone();
        let (child, base) = tokio::task::spawn_blocking(move || spawn(&url))
            .await
            .expect("respawn");
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        *self.base.write().unwrap_or_else(|p| p.into_inner()) = base;
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Kills the server for good.
    pub async fn stop(&self) {
        self.kill();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One client's request, retried until `done` accepts its status.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path (`/api/v1/...`).
    pub path: String,
    /// The bearer token.
    pub token: Option<String>,
    /// The `Idempotency-Key`.
    pub key: Option<String>,
    /// The JSON body (POSTed).
    pub body: Value,
    /// When to stop retrying.
    pub done: fn(StatusCode) -> bool,
}

/// An answer the server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: String,
    /// Whether it was an idempotent replay.
    pub replayed: bool,
}

/// Sends `request` once to the server's current address.
pub async fn send(server: &Server, client: &reqwest::Client, request: &Request) -> Option<Answer> {
    let mut builder = client
        .post(format!("{}{}", server.base(), request.path))
        .timeout(Duration::from_secs(20))
        .json(&request.body);
    if let Some(token) = &request.token {
        builder = builder.bearer_auth(token);
    }
    if let Some(key) = &request.key {
        builder = builder.header("Idempotency-Key", key);
    }
    let response = builder.send().await.ok()?;
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body = response.text().await.ok()?;
    Some(Answer {
        status,
        body,
        replayed,
    })
}

/// Runs every request (staggered over about a second, each retried until done) while the
/// server is SIGKILLed and restarted `kills` times at random moments. Answers every answer each
/// request got, in order (the last one is the one `done` accepted).
pub async fn run_under_kills(
    server: &Arc<Server>,
    client: &reqwest::Client,
    requests: Vec<Request>,
    kills: usize,
) -> Vec<Vec<Answer>> {
    let spread = Duration::from_millis(1_200);
    let count = requests.len().max(1) as u32;
    let clients = requests.into_iter().enumerate().map(|(i, request)| {
        let (server, client) = (server.clone(), client.clone());
        async move {
            let start = spread / count * i as u32
                + Duration::from_millis(rand::thread_rng().gen_range(0..20));
            tokio::time::sleep(start).await;
            let mut answers = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(answer) = send(&server, &client, &request).await {
                    let done = (request.done)(answer.status);
                    answers.push(answer);
                    if done {
                        return answers;
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} got no final answer in 60 s: {answers:?}",
                    request.path
                );
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });
    let killer = {
        let server = server.clone();
        async move {
            for _ in 0..kills {
                let pause = rand::thread_rng().gen_range(100..500);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                server.kill_and_restart().await;
            }
        }
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(clients), killer);
    answers
}
