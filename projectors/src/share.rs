//! Sharing segments fairly among the live worker processes (on any number of hosts).
//!
//! Every process that runs log followers writes a heartbeat row every [`HEARTBEAT`]
//! (`follower_workers`, owned by `eventstore_config::followers`); the live workers are those
//! heard from within [`WORKER_TTL`]. All of them sort the live owner ids the same way, and the
//! worker at rank `r` of `W` (rotated by a hash of the follower's name) aims at `N / W`
//! segments of a follower split into `N`, plus one if `r < N mod W` — so the targets add up to
//! `N`. A follower of one segment is not balanced (whoever takes it first keeps it, as before
//! segments). A worker below its target tries free segments
//! (every [`RENEW_EVERY`](crate::lease::RENEW_EVERY)); a worker above it gives one segment up
//! between two batches, which the worker below its target then takes. A process that dies
//! stops its heartbeat: after [`WORKER_TTL`] the others' targets grow and they take its
//! segments as soon as its leases are free (PostgreSQL frees a dead session's advisory locks
//! when it notices the connection is gone — see the README for the keepalive settings that make
//! this take seconds for a host cut off from the network; SQLite's lease rows expire after
//! [`LEASE_TTL`](crate::lease::LEASE_TTL)). The leases and the checkpoint compare-and-set keep
//! a segment applied by one worker at a time whatever the views of the live set say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use eventstore_config::{followers, segments, Store};
use tokio::sync::watch;

use crate::lease::{self, Lease, LockSession, RENEW_EVERY};

/// How often a worker writes its heartbeat (and re-reads the live workers).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A worker not heard from for this long no longer counts as live.
pub const WORKER_TTL: Duration = Duration::from_secs(4);

/// This process's share of the segments: the live workers and the segments it holds.
pub struct Share {
    owner: String,
    live: watch::Receiver<Vec<String>>,
    held: Mutex<HashMap<String, u32>>,
    session: Option<Arc<LockSession>>,
}

impl Share {
    /// Starts the heartbeat of worker `owner` on `store` (until `shutdown`; then its row is
    /// removed).
    pub fn start(store: &Store, owner: &str, shutdown: watch::Receiver<bool>) -> Arc<Share> {
        let (tx, live) = watch::channel(vec![owner.to_string()]);
        tokio::spawn(beat(store.clone(), owner.to_string(), tx, shutdown));
        Arc::new(Share {
            owner: owner.to_string(),
            live,
            held: Mutex::new(HashMap::new()),
            session: LockSession::for_store(store, owner),
        })
    }

    /// A share for one worker alone, without a heartbeat (tests, tools).
    pub fn alone(store: &Store, owner: &str) -> Arc<Share> {
        let (_tx, live) = watch::channel(vec![owner.to_string()]);
        Arc::new(Share {
            owner: owner.to_string(),
            live,
            held: Mutex::new(HashMap::new()),
            session: LockSession::for_store(store, owner),
        })
    }

    /// This worker's owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The PostgreSQL session holding this process's segment leases.
    pub fn session(&self) -> Option<&Arc<LockSession>> {
        self.session.as_ref()
    }

    /// How many of the `segments` segments of follower `job` this worker aims at (see the
    /// module doc; the ranks are rotated by the job's hash, so that the extra segments of
    /// different jobs go to different workers). An unsplit follower (one segment) is not
    /// balanced: any worker may take it and keeps it while it lives, as before segments.
    pub fn target(&self, job: &str, segments: u32) -> u32 {
        if segments <= 1 {
            // An unsplit follower stays with whoever took it first, as before segments.
            return 1;
        }
        let live = self.live.borrow();
        let workers = live.len().max(1) as u32;
        let rank = live
            .iter()
            .position(|o| o == &self.owner)
            .unwrap_or(live.len()) as u32;
        share_of(job, rank, workers, segments)
    }

    /// The live workers as this one last saw them (its own id included), by owner id.
    pub fn live(&self) -> Vec<String> {
        self.live.borrow().clone()
    }

    /// Counts one more segment of `job` as held if this worker is below its target; whether
    /// it may try to take one.
    pub fn reserve(&self, job: &str, segments: u32) -> bool {
        let target = self.target(job, segments);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(job.to_string()).or_default();
        if *count < target {
            *count += 1;
            true
        } else {
            false
        }
    }

    /// Counts one segment of `job` less (not taken after all, lost, or given up).
    pub fn release(&self, job: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(job) {
            *count = count.saturating_sub(1);
        }
    }

    /// Whether this worker holds more segments of `job` than its target; if so one is counted
    /// as given up (the caller releases its lease).
    pub fn give_up(&self, job: &str, segments: u32) -> bool {
        let target = self.target(job, segments);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(job.to_string()).or_default();
        if *count > target {
            *count -= 1;
            true
        } else {
            false
        }
    }

    /// Closes the lock session (its leases are released).
    pub async fn close(&self) {
        if let Some(session) = &self.session {
            session.close().await;
        }
    }
}

/// The segments of follower `job` (split into `segments`) the worker at `rank` of `workers`
/// aims at: `segments / workers`, plus one for the first `segments mod workers` ranks after
/// rotating them by the job's hash. The shares of all ranks add up to `segments`.
pub fn share_of(job: &str, rank: u32, workers: u32, segments: u32) -> u32 {
    let workers = workers.max(1);
    let rotate = (segments::fnv1a64(job) % u64::from(workers)) as u32;
    let rank = (rank + rotate) % workers;
    segments / workers + u32::from(rank < segments % workers)
}

async fn beat(
    store: Store,
    owner: String,
    live: watch::Sender<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ttl = chrono::Duration::from_std(WORKER_TTL).unwrap_or_default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Utc::now();
        let beat = async {
            followers::heartbeat(&store, &owner, now).await?;
            followers::live_workers(&store, now - ttl, now - ttl * 30).await
        };
        match tokio::time::timeout(HEARTBEAT * 2, beat).await {
            Ok(Ok(mut workers)) => {
                if !workers.contains(&owner) {
                    workers.push(owner.clone());
                    workers.sort();
                }
                live.send_if_modified(|old| {
                    let changed = *old != workers;
                    if changed {
                        tracing::info!(workers = workers.len(), "live workers changed");
                        *old = workers;
                    }
                    changed
                });
            }
            Ok(Err(error)) => tracing::warn!(%error, "heartbeat failed"),
            Err(_) => tracing::warn!("heartbeat timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.changed() => {}
        }
    }
    followers::forget_worker(&store, &owner).await.ok();
}

/// Waits until this process may hold one more segment of `name` ([`Share::reserve`]) and the
/// lease `job` is free, trying every [`RENEW_EVERY`]; `None` once `shutdown` is set. The one
/// claiming loop of every segmented follower (projections, the saga, the relay).
pub async fn claim(
    store: &Store,
    share: &Share,
    name: &str,
    job: &str,
    segments: u32,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Lease> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        if share.reserve(name, segments) {
            match lease::try_acquire_in(share.session(), store, job, share.owner()).await {
                Ok(Some(lease)) => {
                    tracing::info!(job, owner = share.owner(), "segment claimed");
                    return Some(lease);
                }
                Ok(None) => share.release(name),
                Err(error) => {
                    share.release(name);
                    tracing::warn!(job, %error, "claim attempt failed");
                }
            }
        }
        // A little jitter, so that workers do not try in lockstep.
        let jitter = Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]));
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY + jitter) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::share_of;

    #[test]
    fn the_shares_of_the_live_workers_add_up_to_the_segments_and_differ_by_at_most_one() {
        for workers in 1..=5 {
            for segments in 2..=9 {
                for job in ["orders", "audit", "saga:orders"] {
                    let shares: Vec<u32> = (0..workers)
                        .map(|rank| share_of(job, rank, workers, segments))
                        .collect();
                    assert_eq!(shares.iter().sum::<u32>(), segments, "{job} {shares:?}");
                    let (min, max) = (shares.iter().min(), shares.iter().max());
                    assert!(max.unwrap() - min.unwrap() <= 1, "{job} {shares:?}");
                }
            }
        }
    }

    #[test]
    fn four_segments_over_two_workers_are_two_each() {
        assert_eq!(share_of("orders", 0, 2, 4), 2);
        assert_eq!(share_of("orders", 1, 2, 4), 2);
        assert_eq!(share_of("orders", 0, 1, 4), 4);
    }
}
