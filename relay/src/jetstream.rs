//! The JetStream side: the connection (reconnecting forever, in the background), the stream
//! (created if missing, with a duplicate window) and publishing a batch in log order with
//! pipelined acknowledgements, at most one unacknowledged event per aggregate.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use eventstore_config::StoredEvent;

use crate::message::{self, NoPublicView, SUBJECT_PREFIX};
use crate::metrics::RelayMetrics;

/// A batch publish stopped before its end.
#[derive(Debug)]
pub enum Stopped {
    /// A publish or its acknowledgement failed (NATS down, slow or refusing): retry from the
    /// first unacknowledged event.
    Failed(String),
    /// The next event has no public view: the relay must stop before it.
    NoPublicView(NoPublicView),
}

/// A connected (or reconnecting) JetStream publisher.
pub struct Publisher {
    client: async_nats::Client,
    context: jetstream::Context,
    stream: String,
    duplicate_window: Duration,
}

/// Whether `name` can name a JetStream stream (not empty; no white space, `.`, `*`, `>`, `/`
/// or `\`).
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

impl Publisher {
    /// Connects to `url` (in the background: an unreachable server is retried forever, with
    /// backoff up to 5 s). Fails only for an unusable URL.
    pub async fn connect(
        url: &str,
        stream: &str,
        duplicate_window: Duration,
        ack_timeout: Duration,
    ) -> Result<Self, async_nats::ConnectError> {
        let client = async_nats::ConnectOptions::new()
            .name("eventshop relay")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(50)
                    .saturating_mul(1 << attempts.min(7))
                    .min(Duration::from_secs(5))
            })
            .connect(url)
            .await?;
        let context = jetstream::ContextBuilder::new()
            .timeout(ack_timeout)
            .build(client.clone());
        Ok(Self {
            client,
            context,
            stream: stream.to_owned(),
            duplicate_window,
        })
    }

    /// Whether the connection is up right now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Makes sure the stream exists (created with subjects `eventshop.>` and the duplicate
    /// window if missing; an existing stream is used as it is).
    pub async fn ensure_stream(&self) -> Result<(), String> {
        let config = stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            duplicate_window: self.duplicate_window,
            ..Default::default()
        };
        let stream = self
            .context
            .get_or_create_stream(config)
            .await
            .map_err(|e| format!("creating JetStream stream {}: {e}", self.stream))?;
        let info = stream.cached_info();
        let wanted = format!("{SUBJECT_PREFIX}.>");
        if !info
            .config
            .subjects
            .iter()
            .any(|s| s == &wanted || s == ">")
        {
            tracing::warn!(
                stream = %self.stream,
                subjects = ?info.config.subjects,
                "the existing stream does not take subjects {wanted}: publishes will fail"
            );
        }
        Ok(())
    }

    /// Publishes `events` in order, pipelining up to `window` unacknowledged events but never
    /// two of one aggregate: an event is sent only once its aggregate's previous one was
    /// acknowledged, so a lost publish can never let a later version overtake it. Returns how
    /// many leading events JetStream acknowledged, and why it stopped early, if it did.
    pub async fn publish(
        &self,
        events: &[StoredEvent],
        window: usize,
        metrics: &RelayMetrics,
    ) -> (usize, Option<Stopped>) {
        let mut inflight: VecDeque<(usize, (&str, &str), PublishAckFuture)> = VecDeque::new();
        let mut busy: HashSet<(&str, &str)> = HashSet::new();
        let mut acked = 0;
        for (index, event) in events.iter().enumerate() {
            let key = (event.aggregate_type.as_str(), event.aggregate_id.as_str());
            while busy.contains(&key) || inflight.len() >= window.max(1) {
                if let Err(stop) = await_front(&mut inflight, &mut busy, &mut acked, metrics).await
                {
                    return (acked, Some(stop));
                }
            }
            if event.aggregate_type == "account" && event.event_type == "AccountErased" {
                // Erasure: the stream's copy of the registration (e-mail and name) goes first.
                if let Err(error) = self.purge_registration(&event.aggregate_id).await {
                    metrics.publish_errors.inc();
                    return (acked, Some(Stopped::Failed(error)));
                }
            }
            let (subject, publish) = match message::build(event) {
                Ok(built) => built,
                Err(no_view) => {
                    while !inflight.is_empty() {
                        if let Err(stop) =
                            await_front(&mut inflight, &mut busy, &mut acked, metrics).await
                        {
                            return (acked, Some(stop));
                        }
                    }
                    return (acked, Some(Stopped::NoPublicView(no_view)));
                }
            };
            match self.context.send_publish(subject, publish).await {
                Ok(ack) => {
                    inflight.push_back((index, key, ack));
                    busy.insert(key);
                }
                Err(error) => {
                    metrics.publish_errors.inc();
                    return (acked, Some(Stopped::Failed(error.to_string())));
                }
            }
        }
        while !inflight.is_empty() {
            if let Err(stop) = await_front(&mut inflight, &mut busy, &mut acked, metrics).await {
                return (acked, Some(stop));
            }
        }
        (acked, None)
    }
}

impl Publisher {
    /// Removes the published `AccountRegistered` of `account_id` (its personal data) from the
    /// stream, for its erasure.
    async fn purge_registration(&self, account_id: &str) -> Result<(), String> {
        let stream = (self.context.get_stream(&self.stream).await)
            .map_err(|e| format!("purging an erased account: {e}"))?;
        let subject = format!("{SUBJECT_PREFIX}.account.{account_id}.AccountRegistered");
        (stream.purge().filter(subject).await)
            .map_err(|e| format!("purging an erased account: {e}"))?;
        Ok(())
    }
}

/// Awaits the oldest unacknowledged publish.
async fn await_front<'e>(
    inflight: &mut VecDeque<(usize, (&'e str, &'e str), PublishAckFuture)>,
    busy: &mut HashSet<(&'e str, &'e str)>,
    acked: &mut usize,
    metrics: &RelayMetrics,
) -> Result<(), Stopped> {
    let Some((index, key, ack)) = inflight.pop_front() else {
        return Ok(());
    };
    busy.remove(&key);
    match ack.await {
        Ok(ack) => {
            *acked = index + 1;
            metrics.published.inc();
            if ack.duplicate {
                metrics.duplicates.inc();
            }
            Ok(())
        }
        Err(error) => {
            metrics.publish_errors.inc();
            Err(Stopped::Failed(error.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_stream_name;

    #[test]
    fn given_a_plain_name_when_checked_then_it_is_a_valid_stream_name() {
        assert!(valid_stream_name("EVENTSHOP"));
        assert!(valid_stream_name("orders-v2"));
    }

    #[test]
    fn given_dots_wildcards_or_blanks_when_checked_then_the_stream_name_is_refused() {
        for name in ["", "a.b", "a*", "a>", "a b", "a/b", "a\\b", "a\tb"] {
            assert!(!valid_stream_name(name), "{name:?}");
        }
    }
}
