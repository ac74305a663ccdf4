//! How another service consumes eventshop's events: a durable JetStream pull consumer on the
//! relay's stream that prints one JSON line per event (message id, subject, position, event
//! type, public body) and acknowledges it. A consumer that restarts resumes after its last
//! acknowledged message; dedupe on `Nats-Msg-Id` if your handler is not idempotent.
//!
//! ```sh
//! cargo run -p relay --example relay_consumer -- --url nats://127.0.0.1:4222 \
//!     --durable billing --filter 'eventshop.order.>'
//! ```

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use clap::Parser;
use futures::StreamExt;

/// Prints eventshop's events from NATS JetStream as JSON lines.
#[derive(Debug, Parser)]
struct Args {
    /// The NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The relay's stream (the `nats_stream` setting).
    #[arg(long, default_value = "EVENTSHOP")]
    stream: String,
    /// The durable consumer's name: the server remembers how far it got.
    #[arg(long, default_value = "example")]
    durable: String,
    /// Only these subjects (`eventshop.<aggregate_type>.<aggregate_id>.<event_type>`, NATS
    /// wildcards allowed).
    #[arg(long, default_value = "eventshop.>")]
    filter: String,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this many seconds without an event.
    #[arg(long)]
    idle_secs: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = Args::parse();
    let client = async_nats::connect(&args.url).await?;
    let jetstream = jetstream::new(client);
    let stream = jetstream.get_stream(&args.stream).await?;
    let consumer = stream
        .get_or_create_consumer(
            &args.durable,
            pull::Config {
                durable_name: Some(args.durable.clone()),
                filter_subject: args.filter.clone(),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    let idle = Duration::from_secs(args.idle_secs.unwrap_or(u64::MAX / 4));
    let mut seen = 0;
    while args.count.is_none_or(|count| seen < count) {
        let message = match tokio::time::timeout(idle, messages.next()).await {
            Ok(Some(message)) => message?,
            Ok(None) | Err(_) => break,
        };
        // Parsed names: `Nats-Msg-Id` is a standard header and only matches as such.
        let header = |name: &str| {
            let name: async_nats::HeaderName = name.parse().ok()?;
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let body: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let line = serde_json::json!({
            "msg_id": header("Nats-Msg-Id"),
            "subject": message.subject.as_str(),
            "position": header("Eventshop-Position").and_then(|p| p.parse::<i64>().ok()),
            "event_type": header("Eventshop-Event-Type"),
            "body": body,
        });
        println!("{line}");
        message.ack().await?;
        seen += 1;
    }
    Ok(())
}
