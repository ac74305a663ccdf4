//! Helpers for the events' public views: the stored JSON form of an event, and hiding a field of
//! it. Used next to each event type (`AccountEvent::public_json`, …); see [`crate::public`].

use serde::Serialize;
use serde_json::Value;

/// The event serialized as it is stored: `{"type": "<event_type>", "data": {..}}`.
pub(crate) fn stored_json(event: &impl Serialize) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// Removes `field` from the event's `data` object.
pub(crate) fn hide(value: &mut Value, field: &str) {
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        data.remove(field);
    }
}
