//! The one log follower of a query API process: it reads the log in commit-safe order (woken by
//! PostgreSQL `LISTEN eventshop_events`, and polling as a fallback) and the projections'
//! checkpoints, and publishes how far each got. Subscriptions wait on it instead of polling the
//! database each on its own.

use std::sync::OnceLock;
use std::time::Duration;

use eventstore_config::notify::Wake;
use eventstore_config::{Checkpoint, Store};
use tokio::sync::watch;
/// How often the follower looks without a notification.
const POLL: Duration = Duration::from_millis(100);
/// Events read per step.
const BATCH: u32 = 1000;

/// What subscribers wait on: the newest commit-safe checkpoint seen, and every projection's
/// position (name, global position), in name order.
#[derive(Clone)]
pub(crate) struct Follower {
    pub(crate) log: watch::Receiver<Checkpoint>,
    pub(crate) projections: watch::Receiver<Vec<(String, i64)>>,
}

/// Started on first use; the task ends when the query API is dropped.
#[derive(Default)]
pub(crate) struct LazyFollower(OnceLock<Follower>);

impl LazyFollower {
    /// The follower of `store`, started on the first call.
    pub(crate) fn get(&self, store: &Store) -> Follower {
        self.0
            .get_or_init(|| {
                let (log_tx, log) = watch::channel(Checkpoint::START);
                let (projections_tx, projections) = watch::channel(Vec::new());
                tokio::spawn(follow(store.clone(), log_tx, projections_tx));
                Follower { log, projections }
            })
            .clone()
    }
}

impl std::fmt::Debug for LazyFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyFollower")
    }
}

async fn follow(
    store: Store,
    log: watch::Sender<Checkpoint>,
    projections: watch::Sender<Vec<(String, i64)>>,
) {
    // The listener ends with this task (dropped with `stop` and `wake`).
    let (_stop, stop) = watch::channel(false);
    let wake = Wake::start(&store, stop);
    let mut notified = wake.receiver();
    let mut checkpoint = loop {
        match start(&store).await {
            Ok(checkpoint) => break checkpoint,
            Err(error) => tracing::warn!(%error, "the subscription follower cannot start yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    log.send_replace(checkpoint);
    while !log.is_closed() {
        let mut full = false;
        match store.read_after(checkpoint, BATCH).await {
            Ok(events) => {
                full = events.len() == BATCH as usize;
                if let Some(last) = events.last() {
                    checkpoint = last.checkpoint();
                    log.send_replace(checkpoint);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the subscription follower failed to read the log")
            }
        }
        match positions(&store).await {
            Ok(now) => {
                projections.send_if_modified(|old| {
                    let changed = *old != now;
                    *old = now;
                    changed
                });
            }
            Err(error) => tracing::warn!(%error, "reading projection checkpoints failed"),
        }
        if !full {
            tokio::select! {
                _ = notified.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Where a new follower starts: the newest commit-safe event (subscribers read what came
/// before themselves). On PostgreSQL not the head: an event above the head's checkpoint may
/// still be invisible to commit-safe readers (an older transaction of the cluster runs), and
/// the follower must see it become visible to wake the subscribers waiting for it.
async fn start(store: &Store) -> Result<Checkpoint, eventstore_config::ReadError> {
    store.commit_safe_head().await
}

async fn positions(store: &Store) -> Result<Vec<(String, i64)>, sqlx::Error> {
    eventstore_config::followers::positions(store).await
}
