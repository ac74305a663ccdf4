//! What one event becomes in JetStream: its subject, its `Nats-Msg-Id`, its headers and its
//! body (the event's public JSON view, never the stored payload). Pure: no I/O.

use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;
use eventstore_config::StoredEvent;

/// Header: the event type (`OrderPlaced`, …).
pub const EVENT_TYPE: &str = "Eventshop-Event-Type";
/// Header: the event's schema version.
pub const EVENT_VERSION: &str = "Eventshop-Event-Version";
/// Header: the aggregate type (`account`, `wallet`, `product`, `order`, `policy_set`).
pub const AGGREGATE_TYPE: &str = "Eventshop-Aggregate-Type";
/// Header: the aggregate id, as stored.
pub const AGGREGATE_ID: &str = "Eventshop-Aggregate-Id";
/// Header: the aggregate's version after this event (1, 2, …).
pub const VERSION: &str = "Eventshop-Version";
/// Header: the event's global position in the log.
pub const POSITION: &str = "Eventshop-Position";
/// Header: when the event was recorded (RFC 3339, UTC, microseconds).
pub const RECORDED_AT: &str = "Eventshop-Recorded-At";
/// Header: who caused the event (an account id or `system`), when recorded.
pub const ACTOR: &str = "Eventshop-Actor";
/// Header: the business flow the event belongs to, when recorded.
pub const CORRELATION_ID: &str = "Eventshop-Correlation-Id";
/// Header: the event or request that caused this one, when recorded.
pub const CAUSATION_ID: &str = "Eventshop-Causation-Id";

/// Every subject the relay publishes on starts with this token.
pub const SUBJECT_PREFIX: &str = "eventshop";

/// An event that has no public view: the relay stops before it rather than skip it or
/// publish its stored payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event at position {position} ({aggregate_type}/{aggregate_id} version {version}) has no public view: {reason}")]
pub struct NoPublicView {
    /// Global position of the event.
    pub position: i64,
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its aggregate id.
    pub aggregate_id: String,
    /// Its version.
    pub version: u64,
    /// Why the view could not be made.
    pub reason: String,
}

/// One subject token: ASCII letters, digits, `-` and `_` as they are, every other byte as
/// `%XX` (so `.`, `*`, `>` and white space never split or widen a subject); an empty text is
/// `%`. UUIDs and event type names pass unchanged.
pub fn token(text: &str) -> String {
    if text.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `eventshop.<aggregate_type>.<aggregate_id>.<event_type>`, each part a [`token`].
pub fn subject(event: &StoredEvent) -> String {
    format!(
        "{SUBJECT_PREFIX}.{}.{}.{}",
        token(&event.aggregate_type),
        token(&event.aggregate_id),
        token(&event.event_type)
    )
}

/// `<aggregate_type>:<aggregate_id>:<version>` (type and id as [`token`]s): the same event
/// always gets the same id, so JetStream drops a republish within its duplicate window.
pub fn message_id(event: &StoredEvent) -> String {
    format!(
        "{}:{}:{}",
        token(&event.aggregate_type),
        token(&event.aggregate_id),
        event.version
    )
}

/// A header value: the text with control characters (which would break the protocol line)
/// replaced by `?`. Recorded metadata never holds them; this only keeps a corrupt row from
/// breaking the connection.
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The JetStream message for `event`: subject, `Nats-Msg-Id`, headers and the public JSON body.
pub fn build(event: &StoredEvent) -> Result<(String, Publish), NoPublicView> {
    // The log reader upcast the payload; an event of a schema version this binary does not know
    // has no public view (the relay stops at it instead of publishing a guess).
    let body = event.public_view().map_err(|error| NoPublicView {
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        version: event.version,
        reason: error.to_string(),
    })?;
    let body = serde_json::to_vec(&body).map_err(|error| NoPublicView {
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        version: event.version,
        reason: error.to_string(),
    })?;
    let mut publish = Publish::build()
        .payload(Bytes::from(body))
        .message_id(message_id(event))
        .header(EVENT_TYPE, header_value(&event.event_type).as_str())
        .header(EVENT_VERSION, header_value(&event.event_version).as_str())
        .header(AGGREGATE_TYPE, header_value(&event.aggregate_type).as_str())
        .header(AGGREGATE_ID, header_value(&event.aggregate_id).as_str())
        .header(VERSION, event.version.to_string().as_str())
        .header(POSITION, event.position.to_string().as_str())
        .header(
            RECORDED_AT,
            event
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
        );
    let metadata = &event.metadata;
    for (name, value) in [
        (ACTOR, &metadata.actor),
        (CORRELATION_ID, &metadata.correlation_id),
        (CAUSATION_ID, &metadata.causation_id),
    ] {
        if let Some(value) = value {
            publish = publish.header(name, header_value(value).as_str());
        }
    }
    Ok((subject(event), publish))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_uuids_and_type_names_when_tokenized_then_they_pass_unchanged() {
        let id = "0192f0c4-7a1e-7c3a-9d2e-0123456789ab";
        assert_eq!(token(id), id);
        assert_eq!(token("OrderPlaced"), "OrderPlaced");
        assert_eq!(token("policy_set"), "policy_set");
    }

    #[test]
    fn given_subject_special_characters_when_tokenized_then_they_are_percent_encoded() {
        assert_eq!(token("a.b"), "a%2Eb");
        assert_eq!(token("*"), "%2A");
        assert_eq!(token(">"), "%3E");
        assert_eq!(token("a b\t"), "a%20b%09");
        assert_eq!(token("%"), "%25");
        assert_eq!(token(""), "%");
        assert_eq!(token("é"), "%C3%A9");
    }

    #[test]
    fn given_control_characters_when_made_a_header_value_then_they_are_replaced() {
        assert_eq!(header_value("a\r\nb"), "a??b");
    }

    fn stock_added(event_version: &str) -> StoredEvent {
        StoredEvent {
            position: 7,
            transaction_id: 0,
            aggregate_type: "product".into(),
            aggregate_id: "p".into(),
            version: 2,
            event_type: "StockAdded".into(),
            event_version: event_version.into(),
            payload: serde_json::json!({"type": "StockAdded", "data": {"quantity": 5}}),
            metadata: Default::default(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn given_an_event_of_a_schema_version_newer_than_known_when_built_then_nothing_is_published() {
        assert!(build(&stock_added("1")).is_ok());
        let refused = build(&stock_added("2")).expect_err("no message");
        assert_eq!(refused.position, 7);
        assert!(
            refused
                .reason
                .contains("schema version 2, newer than this binary knows (1)"),
            "{}",
            refused.reason
        );
    }
}
