//! What a caller sees of an aggregate's events (`history`): a page of the log read by version,
//! each payload in its event type's public view (`domain::public`: never a secret, never a
//! payload that does not decode), and — on a shared aggregate the caller does not own — other
//! people's business redacted.
//!
//! The privacy rule, in one place ([`Visibility`]): a caller with `get` on the aggregate
//! itself (its owner: a product's seller, an account's holder; admins) sees every event in
//! full. Anyone else who may read the history (every caller, for products) sees an event in
//! full only when it is its own — the caller is its actor, or the order it names is one the
//! caller may read; of every other event it sees the type, version, position, time and the
//! stock figures, but not the `order_id` (the payload field is removed), the `actor` or the
//! `correlationId`.

use async_graphql::Json;
use chrono::{DateTime, Utc};
use eventstore_config::Store;
use serde_json::Value;

use crate::auth::Caller;
use crate::types::EventRecord;

/// Events per `history` page when `first` is not given.
pub const DEFAULT_HISTORY_PAGE: i32 = 100;
/// The largest `history` page.
pub const MAX_HISTORY_PAGE: i32 = 1000;

/// A history read failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    #[error("reading the event log failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored at a schema version this binary cannot upcast (told to the caller: nothing
    /// of the payload is in the message).
    #[error("event at position {position} (version {version}) cannot be read: {source}")]
    Unreadable {
        position: i64,
        version: i64,
        source: domain::upcast::UpcastError,
    },
    #[error("event {position} ({aggregate_type}/{aggregate_id} v{version}) has no public view: {source}")]
    Undecodable {
        position: i64,
        aggregate_type: String,
        aggregate_id: String,
        version: i64,
        source: domain::public::PublicViewError,
    },
}

#[derive(sqlx::FromRow)]
struct EventRow {
    global_position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
}

/// How much of an aggregate's events one caller sees.
pub(crate) enum Visibility<'a> {
    /// Every event in full (the aggregate is the caller's, or the caller is an admin).
    Full,
    /// A shared aggregate of someone else: the caller's own events in full, the rest redacted.
    Shared(&'a Caller),
}

impl<'a> Visibility<'a> {
    /// The visibility of aggregate `resource_type/id` (ACL names: `products`, …) for `caller`.
    pub(crate) fn of(caller: &'a Caller, resource_type: &str, id: &str) -> Self {
        if caller.may_get(resource_type, id) {
            Visibility::Full
        } else {
            Visibility::Shared(caller)
        }
    }

    /// `record` as this caller may see it.
    pub(crate) fn apply(&self, mut record: EventRecord) -> EventRecord {
        let Visibility::Shared(caller) = self else {
            return record;
        };
        let order_id = record
            .payload
            .0
            .get("data")
            .and_then(|data| data.get("order_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let own = record.actor.as_deref() == Some(caller.subject.as_str())
            || order_id
                .as_deref()
                .is_some_and(|order| caller.may_get("orders", order));
        if own {
            return record;
        }
        if let Some(data) = record
            .payload
            .0
            .get_mut("data")
            .and_then(Value::as_object_mut)
        {
            data.remove("order_id");
        }
        record.actor = None;
        record.correlation_id = None;
        record
    }
}

/// Whether `caller` may read the events of `aggregate_type/id` (the log's type names), and
/// how much of them; `Err` for an unknown type. The one rule of `history` and of the `events`
/// subscription.
pub(crate) fn access<'a>(
    caller: &'a Caller,
    aggregate_type: &str,
    id: &str,
) -> Result<(bool, Visibility<'a>), String> {
    Ok(match aggregate_type {
        "account" => (caller.may_get("accounts", id), Visibility::Full),
        "wallet" => (
            caller.may_get("accounts", id) || caller.may_get("wallets", id),
            Visibility::Full,
        ),
        "product" => (true, Visibility::of(caller, "products", id)),
        "order" => (caller.may_get("orders", id), Visibility::Full),
        "policy_set" => (
            caller.subject == id || caller.may_get("policies", id),
            Visibility::Full,
        ),
        // An operator's decisions about a projection (skipped dead letters): admins.
        "projection" => (caller.may_get("projections", id), Visibility::Full),
        other => {
            return Err(format!(
                "unknown aggregateType {other:?}: use account, wallet, product, order, policy_set or projection"
            ))
        }
    })
}

/// The public record of one event read from the global log.
pub(crate) fn stored_record(
    event: &eventstore_config::StoredEvent,
) -> Result<EventRecord, HistoryError> {
    let metadata = serde_json::to_value(event.metadata.to_map()).unwrap_or(Value::Null);
    record(EventRow {
        global_position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        sequence: event.version as i64,
        event_type: event.event_type.clone(),
        event_version: event.event_version.clone(),
        payload: event.payload.clone(),
        metadata,
        recorded_at: event.recorded_at,
    })
}

/// Up to `limit` events of `aggregate_type/aggregate_id` after `after_version`, oldest first,
/// as `visibility` lets the caller see them.
pub(crate) async fn page(
    store: &Store,
    aggregate_type: &str,
    aggregate_id: &str,
    after_version: i64,
    limit: i64,
    visibility: &Visibility<'_>,
) -> Result<Vec<EventRecord>, HistoryError> {
    let events = crate::db::counted(store.aggregate_page(
        aggregate_type,
        aggregate_id,
        after_version,
        limit,
    ))
    .await
    .map_err(|e| match e {
        eventstore_config::ReadError::Database(e) => HistoryError::Database(e),
        other => HistoryError::Database(sqlx::Error::Protocol(other.to_string())),
    })?;
    events
        .iter()
        .map(|event| Ok(visibility.apply(stored_record(event)?)))
        .collect()
}

/// The public record of one stored event, upcast to its type's current schema (an event of a
/// schema version this binary does not know is reported, never shown as stored).
fn record(row: EventRow) -> Result<EventRecord, HistoryError> {
    let upcast = domain::upcast::upcast(&row.event_type, &row.event_version, &row.payload)
        .map_err(|source| HistoryError::Unreadable {
            position: row.global_position,
            version: row.sequence,
            source,
        })?;
    let payload =
        domain::public::public_payload(&row.aggregate_type, &upcast).map_err(|source| {
            HistoryError::Undecodable {
                position: row.global_position,
                aggregate_type: row.aggregate_type.clone(),
                aggregate_id: row.aggregate_id.clone(),
                version: row.sequence,
                source,
            }
        })?;
    let text = |key: &str| {
        row.metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(EventRecord {
        position: row.global_position,
        actor: text("actor"),
        correlation_id: text("correlation_id"),
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id.into(),
        version: row.sequence,
        event_type: row.event_type,
        recorded_at: row.recorded_at,
        payload: Json(payload),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::policy_set::PolicySet;
    use serde_json::json;

    use super::*;

    fn caller(subject: &str, policies: &[&str]) -> Caller {
        let set: PolicySet = policies
            .iter()
            .map(|p| domain::Policy::parse(p).unwrap())
            .collect();
        Caller {
            subject: subject.to_owned(),
            policies: Arc::new(set),
        }
    }

    fn reserved(order: &str, actor: &str) -> EventRecord {
        EventRecord {
            position: 7,
            aggregate_type: "product".into(),
            aggregate_id: "p".into(),
            version: 3,
            event_type: "StockReserved".into(),
            recorded_at: Utc::now(),
            actor: Some(actor.into()),
            correlation_id: Some("c".into()),
            payload: Json(
                json!({"type": "StockReserved", "data": {"order_id": order, "quantity": 2}}),
            ),
        }
    }

    #[test]
    fn given_someone_elses_reservation_when_a_customer_reads_a_product_then_the_order_and_actor_are_hidden(
    ) {
        let bob = caller("bob", &["bob:*:accounts:bob", "bob:get:orders:o2"]);
        let seen = Visibility::of(&bob, "products", "p").apply(reserved("o1", "system"));
        assert_eq!(
            seen.payload.0,
            json!({"type": "StockReserved", "data": {"quantity": 2}})
        );
        assert_eq!((seen.actor, seen.correlation_id), (None, None));
        assert_eq!(seen.version, 3);
    }

    #[test]
    fn given_its_own_reservation_or_its_own_product_when_read_then_everything_is_shown() {
        let bob = caller("bob", &["bob:get:orders:o2"]);
        let own = Visibility::of(&bob, "products", "p").apply(reserved("o2", "system"));
        assert_eq!(own.payload.0["data"]["order_id"], json!("o2"));
        assert_eq!(own.correlation_id.as_deref(), Some("c"));
        let seller = caller("sam", &["sam:*:products:p"]);
        let full = Visibility::of(&seller, "products", "p").apply(reserved("o1", "system"));
        assert_eq!(full.payload.0["data"]["order_id"], json!("o1"));
        assert_eq!(full.actor.as_deref(), Some("system"));
    }
}
