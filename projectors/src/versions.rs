//! Versioned projections: a projection's version is part of its code
//! ([`Projection::version`], each model's `VERSION`), and `projection_status.built_version`
//! records the version whose code built its rows. When a runner starts (`serve`, `projectors
//! run`) and finds another version stored, it rebuilds the projection blue/green in the
//! background ([`crate::rebuild`]): the live tables keep serving (and the live worker keeps
//! applying new events to them) until the swap, which records the new version. Progress is
//! logged (at `warn`, shown by default) every few seconds and shown by `projections list`
//! (`rebuilding (v1 → v2) 45%`).
//!
//! Nothing recorded yet — a fresh database, or one from before versions were recorded —
//! records the code's version without a rebuild: the rows were built by the code that ran, and
//! a wholesale rebuild of an existing store on upgrade would be a surprise. Bump the version to
//! rebuild.
//!
//! One process rebuilds at a time: the rebuild runs under the lease `<name>:rebuild`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore_config::Store;
use indicatif::ProgressBar;
use tokio::sync::watch;

use crate::lease::{Lease, RENEW_EVERY};
use crate::model::Projection;
use crate::progress;
use crate::rebuild;

/// How often a background rebuild logs its progress.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Events per transaction of a background rebuild.
pub const REBUILD_BATCH: u32 = 5000;

/// How a projection's stored version compares with its code's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The rows were built by this code's version (or nothing was recorded: now it is).
    Current(i32),
    /// The rows were built by another version's code.
    Stale {
        /// The stored version.
        built: i32,
        /// The code's version.
        code: i32,
    },
}

/// Compares `projection`'s stored version with its code's; records the code's version if none
/// is stored yet.
pub async fn check(store: &Store, projection: &dyn Projection) -> Result<Version, sqlx::Error> {
    let code = projection.version();
    match progress::built_version(store, projection.name()).await? {
        Some(built) if built == code => Ok(Version::Current(code)),
        Some(built) => Ok(Version::Stale { built, code }),
        None => {
            progress::record_built_version(store, projection.name(), code).await?;
            Ok(Version::Current(code))
        }
    }
}

/// The lease name of `name`'s version rebuild.
pub fn rebuild_lease(name: &str) -> String {
    format!("{name}:rebuild")
}

/// If `projection` is stored at another version, rebuilds it blue/green (under its rebuild
/// lease, renewing it, logging progress) until done or `shutdown`. A rebuild cut short by
/// shutdown is abandoned (the live tables stay) and starts over on the next start.
pub async fn rebuild_if_stale(
    store: Store,
    projection: Arc<dyn Projection>,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let name = projection.name();
    if let Version::Current(_) = check(&store, &*projection).await? {
        return Ok(());
    }
    let lease_name = rebuild_lease(name);
    let Some(mut lease) = Lease::wait(&store, &lease_name, &owner, &mut shutdown).await else {
        return Ok(());
    };
    // Another process may have finished it while this one waited.
    let Version::Stale { built, code } = check(&store, &*projection).await? else {
        lease.release(&store).await;
        return Ok(());
    };
    // Logged at `warn` (as are its progress and end), so that the default log filter shows
    // an operator that a projection is being rebuilt.
    tracing::warn!(
        projection = name,
        from = built,
        to = code,
        "projection version changed: rebuilding blue/green in the background"
    );
    let bar = ProgressBar::hidden();
    let projections = [projection.clone()];
    let started = Instant::now();
    let mut logged = Instant::now();
    let mut work = Box::pin(rebuild::rebuild(&store, &projections, REBUILD_BATCH, &bar));
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let result = loop {
        tokio::select! {
            result = &mut work => break Some(result),
            _ = renew.tick() => {
                if !lease.keep(&store).await {
                    tracing::warn!(projection = name, "rebuild lease lost; the rebuild goes on");
                }
                if logged.elapsed() >= LOG_EVERY {
                    logged = Instant::now();
                    let (done, total) = (bar.position(), bar.length().unwrap_or(0));
                    tracing::warn!(
                        projection = name,
                        done,
                        total,
                        percent = percent(done, total),
                        "rebuild progress"
                    );
                }
            }
            _ = shutdown.changed() => break None,
        }
    };
    drop(work);
    match result {
        Some(Ok(report)) => tracing::warn!(
            projection = name,
            version = code,
            events = report.events,
            secs = started.elapsed().as_secs_f64(),
            "rebuild for the new version swapped in"
        ),
        Some(Err(error)) => {
            tracing::error!(projection = name, error = %format!("{error:#}"), "version rebuild failed");
            rebuild::abandon(&store, name).await.ok();
        }
        None => {
            tracing::warn!(projection = name, "version rebuild stopped by shutdown");
            rebuild::abandon(&store, name).await.ok();
        }
    }
    lease.release(&store).await;
    Ok(())
}

/// `done` of `total` in percent (0 for an empty total).
pub fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 * 100.0 / total as f64).min(100.0)
    }
}
