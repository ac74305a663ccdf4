//! Housekeeping in the background of `serve` and `command-api`: every
//! `housekeeping_interval_secs` it deletes the `Idempotency-Key` records older than
//! `idempotency_key_ttl_secs` (their keys may then be used again as new) and the aggregate
//! snapshots older than their aggregate's newest, and counts both in `/metrics`
//! (`eventshop_idempotency_keys_expired_total`, `eventshop_snapshots_pruned_total`). Several
//! processes may sweep the same database: the deletes are idempotent.

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired idempotency records deleted.
    pub expired_keys: u64,
    /// Superseded snapshots deleted.
    pub pruned_snapshots: u64,
}

/// One sweep now, counted in the metrics.
pub async fn sweep(state: &AppState) -> anyhow::Result<Swept> {
    let ttl = chrono::Duration::seconds(
        i64::try_from(state.settings().idempotency_key_ttl_secs).unwrap_or(i64::MAX / 1000),
    );
    let before = Utc::now()
        .checked_sub_signed(ttl)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let expired_keys = crate::idempotency::expire(state.store(), before).await?;
    let pruned_snapshots = state.store().prune_snapshots().await?;
    state.metrics().swept(expired_keys, pruned_snapshots);
    Ok(Swept {
        expired_keys,
        pruned_snapshots,
    })
}

/// Sweeps every `housekeeping_interval_secs` until aborted (None when the interval is 0). A
/// failed sweep is logged and tried again at the next tick.
pub fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    let every = state.settings().housekeeping_interval_secs;
    if every == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(every));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(&state).await {
                Ok(swept) if swept != Swept::default() => tracing::info!(
                    expired_keys = swept.expired_keys,
                    pruned_snapshots = swept.pruned_snapshots,
                    "housekeeping swept"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %format!("{error:#}"), "housekeeping failed"),
            }
        }
    }))
}
