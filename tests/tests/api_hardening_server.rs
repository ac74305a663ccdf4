//! The HTTP server under abuse (issue 11): idle, slowloris and slow-body connections are closed
//! by the server's timeouts while `/healthz` keeps answering, and `/healthz` says 503 within
//! about a second when the database stops answering.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use command_api::ServeLimits;
use eventshop_tests::TestStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves the real router over `test` with `limits`; returns its address and the app (keep it).
async fn start(test: &TestStore, limits: ServeLimits) -> (SocketAddr, command_api::App) {
    let store = eventstore_config::Store::open(&test.settings)
        .await
        .expect("open the store");
    let app = command_api::build(test.settings.clone(), store)
        .await
        .expect("build the API");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(command_api::serve_with(
        listener,
        app.router(),
        limits,
        std::future::pending::<()>(),
    ));
    (address, app)
}

/// The status line's code of a bare `GET path`, or `None` when no answer came within `wait`.
async fn status_of_get(address: SocketAddr, path: &str, wait: Duration) -> Option<u16> {
    tokio::time::timeout(wait, async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ').nth(1)?.parse().ok()
    })
    .await
    .ok()
    .flatten()
}

/// Whether the server closed `stream` (EOF or reset) within `wait`, reading and discarding.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_many_idle_and_slowloris_connections_when_the_header_timeout_passes_then_they_are_closed_and_healthz_answers(
) {
    let test = TestStore::sqlite().await;
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 40,
        ..ServeLimits::default()
    };
    let (address, _app) = start(&test, limits).await;
    let started = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..120 {
        attackers.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            if i % 2 == 1 {
                // Slowloris: a header line every 200 ms, never the blank line.
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .expect("first line");
                let deadline = Instant::now() + Duration::from_secs(15);
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        return true;
                    }
                    let mut probe = [0u8; 1];
                    if let Ok(Ok(0) | Err(_)) =
                        tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe))
                            .await
                    {
                        return true;
                    }
                }
                false
            } else {
                closed_within(&mut stream, Duration::from_secs(15)).await
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status_of_get(address, "/healthz", Duration::from_secs(10)).await,
        Some(200),
        "healthz did not answer while idle connections were open"
    );
    for attacker in attackers {
        assert!(
            attacker.await.expect("attacker task"),
            "a connection was still open 15 s later"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "closing took {:?}",
        started.elapsed()
    );
    // A kept-alive connection that goes idle after an answer is closed too.
    let mut kept = TcpStream::connect(address).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buffer = [0u8; 1024];
    let read = kept.read(&mut buffer).await.expect("answer");
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut kept, Duration::from_secs(5)).await,
        "an idle kept-alive connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_body_that_drips_in_when_the_body_timeout_passes_then_408() {
    let mut test = TestStore::sqlite().await;
    test.settings.request_body_timeout_secs = 1;
    let (address, _app) = start(&test, ServeLimits::from_settings(&test.settings)).await;
    let stream = TcpStream::connect(address).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\":",
        )
        .await
        .expect("head");
    let started = Instant::now();
    let dripping = async {
        // One byte every 300 ms: each frame arrives well within any per-read timeout.
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let answer = tokio::select! {
        () = dripping => String::new(),
        answer = async {
            let mut buffer = vec![0u8; 2048];
            let n = reader.read(&mut buffer).await.unwrap_or(0);
            String::from_utf8_lossy(&buffer[..n]).into_owned()
        } => answer,
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"errors\""), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_connection_when_a_handler_asks_for_the_peer_address_then_it_gets_the_clients() {
    use axum::extract::ConnectInfo;
    let router = axum::Router::new().route(
        "/peer",
        axum::routing::get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(command_api::serve(
        listener,
        router,
        std::future::pending::<()>(),
    ));
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let local = stream.local_addr().expect("local address");
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&local.to_string()), "{answer}");
}

/// A TCP proxy to PostgreSQL that can be frozen: then it forwards nothing more and accepts
/// connections it never answers, as a database host that stopped responding.
struct FreezableProxy {
    address: SocketAddr,
    freeze: watch::Sender<bool>,
}

impl FreezableProxy {
    async fn to(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (freeze, frozen) = watch::channel(false);
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *frozen.borrow() {
                    held.push(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut frozen = frozen.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = async { let _ = frozen.wait_for(|f| *f).await; } => {
                            // Hold both ends open, silent, until the test ends.
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        FreezableProxy { address, freeze }
    }

    fn freeze(&self) {
        let _ = self.freeze.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_database_that_stops_answering_when_healthz_is_asked_then_503_within_about_a_second(
) {
    let mut test = TestStore::postgres().await;
    let mut url = reqwest::Url::parse(test.url()).expect("database url");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    );
    let proxy = FreezableProxy::to(upstream).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.address.port())).expect("port");
    test.settings.database_url = url.to_string();
    let (address, _app) = start(&test, ServeLimits::default()).await;
    assert_eq!(
        status_of_get(address, "/healthz", Duration::from_secs(5)).await,
        Some(200)
    );

    proxy.freeze();
    for _ in 0..3 {
        let asked = Instant::now();
        let status = status_of_get(address, "/healthz", Duration::from_secs(5)).await;
        let took = asked.elapsed();
        assert_eq!(status, Some(503), "after {took:?}");
        // The server waits 0.8 s (HEALTH_TIMEOUT); the rest is slack for a loaded test machine.
        // Without the timeout no answer comes at all while the database is silent.
        assert!(
            took < command_api::handlers::HEALTH_TIMEOUT + Duration::from_secs(2),
            "503 took {took:?}"
        );
    }
}
