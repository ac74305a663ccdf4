//! The relay worker: owns the `relay:nats` checkpoint under the projections' lease, reads
//! batches in commit-safe order, publishes them, and moves the checkpoint (compare-and-set) only
//! past events JetStream acknowledged. NATS down or slow: retry with backoff from the first
//! unacknowledged event, never skipping one.

use std::future::Future;
use std::time::{Duration, Instant};

use eventstore_config::notify::Wake;

use eventstore_config::{Checkpoint, Settings, Store};
use projectors::lease::{self, Lease};
use projectors::sql::{self, Tx};
use tokio::sync::watch;

use crate::jetstream::{valid_stream_name, Publisher, Stopped};
use crate::message::NoPublicView;
use crate::metrics::RelayMetrics;

/// The relay's checkpoint row and lease name.
pub const CHECKPOINT: &str = "relay:nats";

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The NATS server (`nats://host:4222`).
    pub nats_url: String,
    /// The JetStream stream.
    pub stream: String,
    /// The stream's duplicate window when the relay creates it.
    pub duplicate_window: Duration,
    /// Events read per batch.
    pub batch: u32,
    /// Most unacknowledged publishes at once.
    pub window: usize,
    /// How long a publish may wait for its acknowledgement.
    pub ack_timeout: Duration,
    /// How often an idle relay polls the log without a notification.
    pub poll: Duration,
    /// This process's owner id (for the lease).
    pub owner: String,
}

impl RelayOptions {
    /// The relay the settings ask for: `None` when `nats_url` is unset (or empty).
    pub fn from_settings(settings: &Settings, store: &Store) -> Option<Self> {
        let url = settings.nats_url.as_deref()?.trim();
        if url.is_empty() {
            return None;
        }
        let pg = matches!(store, Store::Postgres(_));
        Some(Self {
            nats_url: url.to_owned(),
            stream: settings.nats_stream.clone(),
            duplicate_window: Duration::from_secs(settings.nats_duplicate_window_secs.max(1)),
            batch: if pg { 1000 } else { 500 },
            window: 256,
            ack_timeout: Duration::from_secs(5),
            poll: Duration::from_millis(if pg { 500 } else { 100 }),
            owner: lease::owner_id(),
        })
    }

    /// Checks the settings that can be checked without a server: the URL (or comma-separated
    /// list) and the stream name.
    pub fn validate(&self) -> Result<(), RelayError> {
        for server in self.nats_url.split(',') {
            server
                .trim()
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| RelayError::BadUrl {
                    url: redacted_url(&self.nats_url),
                    reason: e.to_string(),
                })?;
        }
        if valid_stream_name(&self.stream) {
            Ok(())
        } else {
            Err(RelayError::BadStream(self.stream.clone()))
        }
    }

    /// The NATS URL without credentials, for messages.
    pub fn display_url(&self) -> String {
        redacted_url(&self.nats_url)
    }
}

/// `url` with any user, password or token replaced by `***` (each server of a list).
pub fn redacted_url(url: &str) -> String {
    url.split(',')
        .map(|server| match server.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => server.to_owned(),
            },
            None => match server.rsplit_once('@') {
                Some((_, host)) => format!("***@{host}"),
                None => server.to_owned(),
            },
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Why the relay ended (other than being asked to stop).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// `nats_url` is not a usable NATS URL.
    #[error("invalid nats_url {url:?}: {reason}")]
    BadUrl {
        /// The setting.
        url: String,
        /// Why.
        reason: String,
    },
    /// `nats_stream` cannot name a stream.
    #[error("invalid nats_stream {0:?}: a stream name must be non-empty, without white space, '.', '*', '>', '/' or '\\'")]
    BadStream(String),
    /// An event has no public view; the relay stopped before it.
    #[error("the relay stopped before an event it must not publish: {0}")]
    NoPublicView(#[from] NoPublicView),
}

/// How the relay's work under one lease ended.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// The lease (or the checkpoint) was lost: wait to own it again.
    Lost,
}

/// Runs the relay until `shutdown` completes. Never returns early because NATS or the database
/// is down (it waits and retries); returns an error only for bad settings or an event without
/// a public view.
pub async fn run(
    store: Store,
    options: RelayOptions,
    metrics: RelayMetrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RelayError> {
    options.validate()?;
    let publisher = Publisher::connect(
        &options.nats_url,
        &options.stream,
        options.duplicate_window,
        options.ack_timeout,
    )
    .await
    .map_err(|e| RelayError::BadUrl {
        url: options.display_url(),
        reason: e.to_string(),
    })?;
    let (stop_tx, stop) = watch::channel(false);
    let listener = Wake::start(&store, stop.clone());
    let relay = relay(
        &store,
        &options,
        &publisher,
        &metrics,
        listener.receiver(),
        stop,
    );
    tokio::pin!(relay);
    tokio::pin!(shutdown);
    let result = tokio::select! {
        result = &mut relay => result,
        _ = &mut shutdown => {
            stop_tx.send_replace(true);
            relay.await
        }
    };
    stop_tx.send_replace(true);
    listener.stopped().await;
    result
}

async fn relay(
    store: &Store,
    options: &RelayOptions,
    publisher: &Publisher,
    metrics: &RelayMetrics,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RelayError> {
    while let Some(mut lease) = Lease::wait(store, CHECKPOINT, &options.owner, &mut stop).await {
        let result = work(
            store, options, publisher, metrics, &mut lease, &mut wake, &mut stop,
        )
        .await;
        lease.release(store).await;
        match result {
            Ok(Ended::Stopped) => return Ok(()),
            Ok(Ended::Lost) => tracing::warn!("relay lease lost; waiting to own it again"),
            Err(error) => {
                tracing::error!(error = %error, "relay stopped");
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Waits `attempts`' backoff (100 ms doubling, at most 5 s) or until stopped.
async fn backoff(attempts: u32, stop: &mut watch::Receiver<bool>) {
    let delay = Duration::from_millis(100)
        .saturating_mul(1 << attempts.min(6))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
}

/// Relays batches while holding the lease. Checkpoints are saved by a [`Saver`] beside the
/// publishing, so that a slow commit of the checkpoint never delays the next batch.
#[allow(clippy::too_many_arguments)]
async fn work(
    store: &Store,
    options: &RelayOptions,
    publisher: &Publisher,
    metrics: &RelayMetrics,
    lease: &mut Lease,
    wake: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Ended, RelayError> {
    let start = loop {
        match sql::read_checkpoint(store, CHECKPOINT).await {
            Ok(cp) => break cp,
            Err(error) => {
                tracing::warn!(%error, "reading the relay checkpoint failed; retrying");
                backoff(3, stop).await;
                if *stop.borrow() {
                    return Ok(Ended::Stopped);
                }
            }
        }
    };
    metrics.position.set(start.position);
    let saver = Saver::start(store.clone(), start, metrics.clone());
    let ended = publish_all(
        store, options, publisher, metrics, lease, wake, stop, start, &saver,
    )
    .await;
    // The last acknowledged checkpoint is saved (once) before the lease is given up.
    let lost = saver.finish().await;
    match ended {
        Ok(Ended::Stopped) if lost => Ok(Ended::Lost),
        other => other,
    }
}

/// The publishing loop: reads after `cp` in commit-safe order, publishes, and hands every
/// acknowledged checkpoint to `saver`.
#[allow(clippy::too_many_arguments)]
async fn publish_all(
    store: &Store,
    options: &RelayOptions,
    publisher: &Publisher,
    metrics: &RelayMetrics,
    lease: &mut Lease,
    wake: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
    mut cp: Checkpoint,
    saver: &Saver,
) -> Result<Ended, RelayError> {
    let mut attempts = 0u32;
    let mut stream_ready = false;
    loop {
        if *stop.borrow() {
            return Ok(Ended::Stopped);
        }
        if saver.lost() || !lease.keep(store).await {
            return Ok(Ended::Lost);
        }
        let connected = publisher.connected();
        metrics.connected.set(i64::from(connected));
        if !connected {
            backoff(attempts, stop).await;
            attempts = attempts.saturating_add(1);
            continue;
        }
        if !stream_ready {
            if let Err(error) = publisher.ensure_stream().await {
                tracing::warn!(%error, "the relay's stream is not ready; retrying");
                metrics.publish_errors.inc();
                backoff(attempts, stop).await;
                attempts = attempts.saturating_add(1);
                continue;
            }
            stream_ready = true;
        }
        let events = match store.read_after(cp, options.batch).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "the relay could not read the log; retrying");
                backoff(attempts, stop).await;
                attempts = attempts.saturating_add(1);
                continue;
            }
        };
        if events.is_empty() {
            attempts = 0;
            let wait = options.poll.min(lease.renew_in());
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            continue;
        }

        // Publish while keeping the lease renewed (acknowledgements may take seconds).
        let publish = publisher.publish(&events, options.window, metrics);
        tokio::pin!(publish);
        let (acked, stopped) = loop {
            tokio::select! {
                done = &mut publish => break done,
                // Unacknowledged events are re-sent by the next owner (and deduplicated).
                _ = stop.changed() => return Ok(Ended::Stopped),
                _ = tokio::time::sleep(lease.renew_in()) => {
                    if !lease.keep(store).await {
                        return Ok(Ended::Lost);
                    }
                }
            }
        };

        if acked > 0 {
            cp = events[acked - 1].checkpoint();
            saver.acknowledged(cp);
        }
        match stopped {
            None => attempts = 0,
            Some(Stopped::Failed(error)) => {
                tracing::warn!(
                    %error,
                    position = cp.position,
                    "publishing to NATS JetStream failed; retrying from the first unacknowledged event"
                );
                stream_ready = false;
                backoff(attempts, stop).await;
                attempts = attempts.saturating_add(1);
            }
            Some(Stopped::NoPublicView(no_view)) => return Err(no_view.into()),
        }
    }
}

/// Saves the relay's checkpoint in the background: always the newest acknowledged one, one
/// write at a time, each a compare-and-set from the last saved. Also measures the lag (at most
/// once a second), off the publishing path.
struct Saver {
    acked: watch::Sender<Checkpoint>,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Saver {
    fn start(store: Store, saved: Checkpoint, metrics: RelayMetrics) -> Self {
        let (acked, newest) = watch::channel(saved);
        let (lost_tx, lost) = watch::channel(false);
        let task = tokio::spawn(save(store, saved, newest, lost_tx, metrics));
        Self { acked, lost, task }
    }

    /// JetStream acknowledged every event up to `cp`.
    fn acknowledged(&self, cp: Checkpoint) {
        self.acked.send_replace(cp);
    }

    /// Whether the checkpoint moved under this relay (another owner).
    fn lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Saves the last acknowledged checkpoint (one attempt) and stops; whether it was lost.
    async fn finish(self) -> bool {
        let Self { acked, lost, task } = self;
        drop(acked);
        if let Err(error) = task.await {
            tracing::warn!(%error, "the relay's checkpoint saver ended abnormally");
        }
        let lost = *lost.borrow();
        lost
    }
}

/// The saver's loop (see [`Saver`]).
async fn save(
    store: Store,
    mut saved: Checkpoint,
    mut newest: watch::Receiver<Checkpoint>,
    lost: watch::Sender<bool>,
    metrics: RelayMetrics,
) {
    let mut measured: Option<Instant> = None;
    let mut failures = 0u32;
    loop {
        if measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            measure_lag(&store, saved, &metrics).await;
            measured = Some(Instant::now());
        }
        let target = *newest.borrow_and_update();
        if target == saved {
            let wait = Duration::from_secs(1)
                .saturating_sub(measured.map_or(Duration::ZERO, |at| at.elapsed()));
            tokio::select! {
                changed = newest.changed() => {
                    if changed.is_err() {
                        // The publisher stopped: save what it acknowledged last, once.
                        let last = *newest.borrow();
                        if last != saved {
                            match advance(&store, saved, last).await {
                                Ok(true) => {
                                    metrics.position.set(last.position);
                                }
                                Ok(false) => { lost.send_replace(true); }
                                Err(error) => tracing::warn!(%error, "saving the relay checkpoint at stop failed; the next owner re-sends (deduplicated)"),
                            }
                        }
                        return;
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        match advance(&store, saved, target).await {
            Ok(true) => {
                saved = target;
                failures = 0;
                metrics.position.set(saved.position);
            }
            Ok(false) => {
                lost.send_replace(true);
                return;
            }
            Err(error) => {
                // The events are in the stream; a re-send is dropped as a duplicate. A stopping
                // relay does not wait for the database: the next owner re-sends from the saved
                // checkpoint.
                if newest.has_changed().is_err() {
                    tracing::warn!(%error, "saving the relay checkpoint at stop failed; the next owner re-sends (deduplicated)");
                    return;
                }
                tracing::warn!(%error, "moving the relay checkpoint failed; retrying");
                let delay = Duration::from_millis(100).saturating_mul(1 << failures.min(5));
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    // A newer checkpoint, or the relay stopping: try again now.
                    _ = newest.changed() => {}
                }
            }
        }
    }
}

/// Moves the checkpoint from `from` to `to` if nobody else moved it meanwhile.
async fn advance(store: &Store, from: Checkpoint, to: Checkpoint) -> Result<bool, sqlx::Error> {
    let mut tx = Tx::begin(store).await?;
    let current = tx.lock_checkpoint(CHECKPOINT).await?;
    if current != from {
        tracing::warn!(?current, expected = ?from, "the relay checkpoint moved under this relay");
        tx.rollback().await?;
        return Ok(false);
    }
    tx.write_checkpoint(CHECKPOINT, to).await?;
    tx.commit().await?;
    Ok(true)
}

/// Updates the lag gauges: events after `cp`, and the age of the oldest of them.
async fn measure_lag(store: &Store, cp: Checkpoint, metrics: &RelayMetrics) {
    match sql::events_after(store, cp).await {
        Ok((count, oldest)) => {
            metrics.lag_events.set(count);
            let age = oldest
                .map(|t| (chrono::Utc::now() - t).num_microseconds().unwrap_or(0) as f64 / 1e6)
                .unwrap_or(0.0);
            metrics.lag_seconds.set(age.max(0.0));
        }
        Err(error) => tracing::debug!(%error, "measuring the relay's lag failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn given_credentials_in_the_nats_url_when_displayed_then_they_are_hidden() {
        assert_eq!(redacted_url("nats://u:secret@h:4222"), "nats://***@h:4222");
        assert_eq!(redacted_url("nats://TOKEN@h"), "nats://***@h");
        assert_eq!(
            redacted_url("nats://a@h1,nats://h2"),
            "nats://***@h1,nats://h2"
        );
        assert_eq!(redacted_url("nats://h:4222"), "nats://h:4222");
    }
}
