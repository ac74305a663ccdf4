//! Event schema versions and upcasting: every event type has a schema version, stored with each
//! event (`events.event_version`), and a chain of pure upcasters (v1 → v2 → …) on the stored
//! JSON brings an older event to the shape this binary writes. Stored events are never
//! rewritten: readers upcast as they decode (eventstore-config's log reader, the one place a
//! stored row becomes an event, calls [`upcast`]).
//!
//! Adding a version: write `fn x_v2_to_v3(data: &mut Map) -> Result<(), String>` (in a module of
//! its own, like [`crate::sku`], which this module may use), add a [`Step`] with `from: 2` to
//! [`STEPS`], and the type's [`current_version`] becomes
//! 3 — so new events are written at v3 and every older one passes through every later step.
//!
//! An event stored at a version newer than this binary knows is an error
//! ([`UpcastError::FromTheFuture`]), never decoded by guesswork.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// One upcaster: turns `event_type`'s `data` at version `from` into version `from + 1`.
pub struct Step {
    /// The event type it upcasts.
    pub event_type: &'static str,
    /// The version it reads; it writes `from + 1`.
    pub from: u32,
    /// The pure change of the event's `data` object; `Err` names what is missing.
    pub upcast: fn(&mut Map<String, Value>) -> Result<(), String>,
}

/// Every upcaster, per event type in version order. An event type without steps is at version 1.
pub const STEPS: &[Step] = &[Step {
    event_type: "ProductCreated",
    from: 1,
    upcast: crate::sku::product_created_v1_to_v2,
}];

/// Why a stored event could not be brought to the current schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// Stored by a newer eventshop: this binary does not know the version.
    #[error("{event_type} is stored at schema version {version}, newer than this binary knows ({known})")]
    FromTheFuture {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: u32,
        /// The newest version this binary knows.
        known: u32,
    },
    /// The stored version is not a positive integer.
    #[error("{event_type} has an unreadable schema version {version:?}")]
    BadVersion {
        /// The event type.
        event_type: String,
        /// The stored text.
        version: String,
    },
    /// An upcaster could not read the older event.
    #[error("{event_type} v{from} does not upcast: {reason}")]
    Step {
        /// The event type.
        event_type: String,
        /// The version the failing step reads.
        from: u32,
        /// The step's message.
        reason: String,
    },
}

/// The schema version this binary writes `event_type` at (1 + its upcasters).
pub fn current_version(event_type: &str) -> u32 {
    1 + STEPS.iter().filter(|s| s.event_type == event_type).count() as u32
}

/// [`current_version`] as stored (`events.event_version` is text).
pub fn current_version_text(event_type: &str) -> String {
    current_version(event_type).to_string()
}

/// `payload` (stored as `{"type", "data"}`) of an `event_type` stored at `version`, in the shape of
/// the current version: borrowed unchanged when it is current, upcast step by step otherwise.
pub fn upcast<'a>(
    event_type: &str,
    version: &str,
    payload: &'a Value,
) -> Result<Cow<'a, Value>, UpcastError> {
    let known = current_version(event_type);
    let stored: u32 = match version.trim().parse() {
        Ok(v) if v >= 1 => v,
        _ => {
            return Err(UpcastError::BadVersion {
                event_type: event_type.to_owned(),
                version: version.to_owned(),
            })
        }
    };
    if stored == known {
        return Ok(Cow::Borrowed(payload));
    }
    if stored > known {
        return Err(UpcastError::FromTheFuture {
            event_type: event_type.to_owned(),
            version: stored,
            known,
        });
    }
    let mut upcast = payload.clone();
    for step in STEPS
        .iter()
        .filter(|s| s.event_type == event_type && s.from >= stored)
    {
        let failed = |reason: String| UpcastError::Step {
            event_type: event_type.to_owned(),
            from: step.from,
            reason,
        };
        let data = upcast
            .get_mut("data")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| failed("no data object".to_owned()))?;
        (step.upcast)(data).map_err(failed)?;
    }
    Ok(Cow::Owned(upcast))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_of_each_event_type_are_listed_in_version_order_from_one() {
        let mut types: Vec<&str> = STEPS.iter().map(|s| s.event_type).collect();
        types.dedup();
        for event_type in types {
            let froms: Vec<u32> = STEPS
                .iter()
                .filter(|s| s.event_type == event_type)
                .map(|s| s.from)
                .collect();
            let expected: Vec<u32> = (1..=froms.len() as u32).collect();
            assert_eq!(froms, expected, "{event_type}");
        }
    }

    #[test]
    fn given_an_event_at_its_current_version_when_upcast_then_it_is_borrowed_unchanged() {
        let payload = json!({"type": "StockAdded", "data": {"quantity": 1}});
        let upcast = upcast("StockAdded", "1", &payload).unwrap();
        assert!(matches!(upcast, Cow::Borrowed(_)));
    }

    #[test]
    fn given_a_version_newer_than_known_when_upcast_then_it_is_refused_with_both_versions() {
        let payload = json!({"type": "StockAdded", "data": {"quantity": 1}});
        let error = upcast("StockAdded", "7", &payload).unwrap_err();
        assert_eq!(
            error,
            UpcastError::FromTheFuture {
                event_type: "StockAdded".into(),
                version: 7,
                known: 1
            }
        );
        assert!(upcast("StockAdded", "one", &payload).is_err());
        assert!(upcast("StockAdded", "0", &payload).is_err());
    }
}
