//! The HTTP server every eventshop listener runs on (`serve`, `command-api`, `query-api`, the
//! tests): HTTP/1.1 with upgrades, a header-read timeout that also closes idle kept-alive
//! connections, a deadline for every request body (see [`crate::deadline`]), unread bodies read to their end before an early answer (see [`crate::leftover`]), a cap on concurrent connections (kept below the open-file limit), the peer
//! address as `ConnectInfo<SocketAddr>`, and a graceful drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use eventstore_config::Settings;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::deadline::DeadlineBody;
use crate::leftover::{Leftover, Tracked};

/// Open files kept free for the database pool, logs and the like when the connection cap is
/// derived from the open-file limit.
const RESERVED_FILES: u64 = 128;

/// The connection limits of [`serve_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers, from the connection's start or the end
    /// of the previous response (the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Most connections served at once; further ones wait in the listen queue.
    pub max_connections: usize,
    /// Time a client has to send a whole request body, from the end of its head.
    pub request_body_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits::from_settings(&Settings::default())
    }
}

impl ServeLimits {
    /// The limits `settings` configure (`header_read_timeout_secs`, `max_http_connections`,
    /// `request_body_timeout_secs`).
    pub fn from_settings(settings: &Settings) -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs.max(1)),
            max_connections: settings.max_http_connections.max(1),
            request_body_timeout: Duration::from_secs(settings.request_body_timeout_secs.max(1)),
        }
    }

    /// The connection cap, lowered to fit the process's soft open-file limit.
    fn effective_max_connections(&self) -> usize {
        let files = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft)
            .unwrap_or(u64::MAX);
        let fits =
            usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
        self.max_connections.min(fits).min(1 << 20)
    }
}

/// Serves `router` on `listener` with the default [`ServeLimits`] until `shutdown` completes,
/// then lets running requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServeLimits::default(), shutdown).await
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes; then stops
/// accepting, lets running requests finish and closes idle connections.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = limits.effective_max_connections();
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // e.g. too many open files: wait instead of spinning.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let body_time = limits.request_body_timeout;
        let router = router.clone();
        let service = tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let router = router.clone();
            async move {
                let leftover = Leftover::default();
                let mut request = request.map(|body| {
                    axum::body::Body::new(Tracked::new(
                        DeadlineBody::new(body, body_time),
                        leftover.clone(),
                    ))
                });
                request.extensions_mut().insert(ConnectInfo(peer));
                let response = router.oneshot(request).await;
                // An answer given before the body was read: read the rest first.
                leftover.drain().await;
                response
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let stopped = async {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped => {
                    // Finish the running request, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it is closed: wait for all of them.
    let _ = permits
        .acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// Errors of one connection (the peer gave up before it was accepted): accept the next one.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// The type the peer address is served as (`ConnectInfo<SocketAddr>` in handlers).
pub type PeerAddr = ConnectInfo<SocketAddr>;
