//! The relay's Prometheus metrics: its position, how far it is behind the log, what it
//! published and how often publishing failed. Cheap to clone (shared atomics); `serve` adds the
//! registry to `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The relay's counters and gauges.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics {
    /// Global position of the last event JetStream acknowledged (and the checkpoint holds).
    pub position: Gauge,
    /// Events in the log after the relay's checkpoint.
    pub lag_events: Gauge,
    /// Age in seconds of the oldest event not yet relayed (0 when caught up).
    pub lag_seconds: Gauge<f64, AtomicU64>,
    /// Events JetStream acknowledged (including those it reported as duplicates).
    pub published: Counter,
    /// Acknowledgements JetStream flagged as duplicates (a republish it dropped).
    pub duplicates: Counter,
    /// Publishes or acknowledgements that failed (each is retried).
    pub publish_errors: Counter,
    /// 1 while the connection to NATS is up, else 0.
    pub connected: Gauge,
}

impl RelayMetrics {
    /// Fresh metrics at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry (prefix `eventshop`) holding these metrics as `eventshop_relay_*`.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("eventshop");
        registry.register(
            "relay_position",
            "Global position of the last event the NATS relay had acknowledged by JetStream",
            self.position.clone(),
        );
        registry.register(
            "relay_lag_events",
            "Events in the log not yet relayed to NATS JetStream",
            self.lag_events.clone(),
        );
        registry.register(
            "relay_lag_seconds",
            "Age of the oldest event not yet relayed to NATS JetStream (0 when caught up)",
            self.lag_seconds.clone(),
        );
        registry.register(
            "relay_published",
            "Events published to NATS JetStream and acknowledged",
            self.published.clone(),
        );
        registry.register(
            "relay_duplicates",
            "Republished events JetStream dropped as duplicates",
            self.duplicates.clone(),
        );
        registry.register(
            "relay_publish_errors",
            "Failed publishes to NATS JetStream (each one retried)",
            self.publish_errors.clone(),
        );
        registry.register(
            "relay_connected",
            "1 while the relay's connection to NATS is up, else 0",
            self.connected.clone(),
        );
        registry
    }
}
