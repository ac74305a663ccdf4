//! Prometheus metrics: request counts and latency histograms by route (the matched path
//! template, never the raw path) and status, served as text at `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// The API's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    expired_keys: Counter,
    pruned_snapshots: Counter,
    /// Registries other parts of the process add (the NATS relay's).
    extra: std::sync::RwLock<Vec<Registry>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(
        [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]
        .into_iter(),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the request metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("eventshop");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by method, route and status",
            latency.clone(),
        );
        let expired_keys = Counter::default();
        registry.register(
            "idempotency_keys_expired",
            "Idempotency-Key records swept after idempotency_key_ttl_secs",
            expired_keys.clone(),
        );
        let pruned_snapshots = Counter::default();
        registry.register(
            "snapshots_pruned",
            "Aggregate snapshots deleted because a newer one of the aggregate exists",
            pruned_snapshots.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            expired_keys,
            pruned_snapshots,
            extra: Default::default(),
        }
    }

    /// Counts what a housekeeping sweep removed.
    pub fn swept(&self, expired_keys: u64, pruned_snapshots: u64) {
        self.expired_keys.inc_by(expired_keys);
        self.pruned_snapshots.inc_by(pruned_snapshots);
    }

    /// Serves `registry`'s metrics too (e.g. the relay's, when `serve` runs one).
    pub fn add_registry(&self, registry: Registry) {
        if let Ok(mut extra) = self.extra.write() {
            extra.push(registry);
        }
    }

    fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode_registry(&mut text, &self.registry)?;
        if let Ok(extra) = self.extra.read() {
            for registry in extra.iter() {
                encode_registry(&mut text, registry)?;
            }
        }
        encode_eof(&mut text)?;
        Ok(text)
    }
}

/// Middleware recording every request (routes without a match count as `unmatched`).
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    metrics.observe(
        RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            ApiError::internal(anyhow::anyhow!("rendering metrics: {error}")).into_response()
        }
    }
}
