//! The one LISTEN/NOTIFY listener of a process: PostgreSQL's `events` trigger signals
//! [`CHANNEL`] on every append; [`Wake::start`] keeps one `LISTEN` connection and turns each
//! notification into a tick of a `watch` channel that every log follower of the process (the
//! projection runner, the order saga, the relay, the GraphQL subscription follower) waits on
//! beside its polling interval. SQLite has no notifications: its followers poll.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;

/// The PostgreSQL notification channel the `events` trigger signals.
pub const CHANNEL: &str = "eventshop_events";

/// A running listener: subscribe with [`Wake::receiver`]; it stops with the shutdown signal
/// given to [`Wake::start`] (or when dropped).
#[derive(Debug)]
pub struct Wake {
    receiver: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

impl Wake {
    /// Starts the listener of `store` (none on SQLite), until `shutdown` is set.
    pub fn start(store: &Store, shutdown: watch::Receiver<bool>) -> Self {
        let (sender, receiver) = watch::channel(0u64);
        let task = tokio::spawn(listen(store.clone(), sender, shutdown));
        Self {
            receiver,
            task: Some(task),
        }
    }

    /// A receiver that changes on every notification.
    pub fn receiver(&self) -> watch::Receiver<u64> {
        self.receiver.clone()
    }

    /// Waits for the listener to end (after the shutdown signal).
    pub async fn stopped(mut self) {
        if let Some(task) = self.task.take() {
            task.await.ok();
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Forwards PostgreSQL notifications on [`CHANNEL`] to `wake` until `shutdown` is set or every
/// receiver is gone, reconnecting after a failure. On SQLite it only keeps `wake` open until
/// then (a closed channel would wake its receivers at once, again and again), so that its
/// followers wait for their polling interval.
pub async fn listen(store: Store, wake: watch::Sender<u64>, mut shutdown: watch::Receiver<bool>) {
    let Store::Postgres(pool) = store else {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            _ = wake.closed() => {}
        }
        return;
    };
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            loop {
                listener.recv().await?;
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listener => {
                if let Err(error) = result {
                    tracing::warn!(%error, "LISTEN failed; polling until it reconnects");
                }
            }
            _ = shutdown.changed() => return,
            _ = wake.closed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
