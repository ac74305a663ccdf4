//! The order saga's name (its checkpoint and lease) and how it runs.

use std::time::Duration;

use eventstore_config::Settings;

use crate::lease;

/// Checkpoint and lease name of the order saga.
pub const NAME: &str = "saga:orders";

/// Attempts at one order's step within a batch (each command already retried 3 times) before
/// the order is parked as poison — provided the database still answers, so that an outage
/// fails the batch (retried with backoff) instead of parking every order in it.
pub const PARK_AFTER_ATTEMPTS: u32 = 3;

/// How the saga runs.
#[derive(Debug, Clone)]
pub struct SagaOptions {
    /// Events per batch.
    pub batch: u32,
    /// Idle polling interval (PostgreSQL also wakes on NOTIFY).
    pub poll: Duration,
    /// Orders worked on at once within a batch.
    pub concurrency: usize,
    /// How long an order may await payment.
    pub payment_timeout: Duration,
    /// This process's lease owner id.
    pub owner: String,
    /// Attempts at an order's step before the order is parked ([`PARK_AFTER_ATTEMPTS`]).
    pub park_after: u32,
}

impl SagaOptions {
    /// Defaults from the settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            batch: 200,
            poll: Duration::from_millis(100),
            concurrency: 32,
            payment_timeout: Duration::from_secs(settings.payment_timeout_secs),
            owner: lease::owner_id(),
            park_after: PARK_AFTER_ATTEMPTS,
        }
    }
}
