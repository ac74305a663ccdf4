//! The NATS JetStream relay: follows the event log in commit-safe order and publishes every
//! event, exactly once and in each aggregate's version order, to a JetStream stream.
//!
//! * [`message`]: an event's subject, `Nats-Msg-Id`, headers and public JSON body.
//! * [`jetstream`]: the connection, the stream, and pipelined publishing.
//! * [`metrics`]: position, lag and publish errors for `/metrics`.
//! * [`worker`]: the lease, the checkpoint (moved only after JetStream acknowledged every
//!   event up to it), retries with backoff, and wake-up.
#![forbid(unsafe_code)]

pub mod jetstream;
pub mod message;
pub mod metrics;
pub mod worker;

pub use metrics::RelayMetrics;
pub use worker::{run, RelayError, RelayOptions, CHECKPOINT};
