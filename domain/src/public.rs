//! The public JSON view of events: what may leave the process wherever an event is shown
//! (`history`, `events tail`, audit, the relay, subscriptions, the console). Each event type
//! writes its own view next to its definition (`AccountEvent::public_json`, …, with the helpers
//! of the `event_json` module); this module dispatches from a stored payload.
//!
//! Personal fields (an account's e-mail and name) show as stored-and-opened: the readers of the
//! store open sealed values before they get here (plaintext while the account's key exists,
//! `"[erased]"` after its erasure). A payload still sealed does not decode (a sealed e-mail is
//! not an address), so a ciphertext is never shown either.

use serde_json::Value;

use crate::account::AccountEvent;
use crate::order::OrderEvent;
use crate::policy_set::PolicySetEvent;
use crate::product::ProductEvent;
use crate::projection::ProjectionEvent;
use crate::wallet::WalletEvent;

/// A stored payload that is not an event of its aggregate type (or an unknown type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {aggregate_type} event: {reason}")]
pub struct PublicViewError {
    /// The aggregate type the payload was read as.
    pub aggregate_type: String,
    /// Why it does not decode.
    pub reason: String,
}

/// The public view of a stored event as read from the store: `payload` of `event_type` stored at
/// schema `version`, upcast ([`crate::upcast`]) and then shown as [`public_payload`]. A version
/// newer than this binary knows has no view (an error naming both versions).
pub fn public_view(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: &Value,
) -> Result<Value, PublicViewError> {
    let upcast =
        crate::upcast::upcast(event_type, version, payload).map_err(|e| PublicViewError {
            aggregate_type: aggregate_type.to_owned(),
            reason: e.to_string(),
        })?;
    public_payload(aggregate_type, &upcast)
}

/// The public view of a `payload` (in its event type's current schema) of an aggregate of
/// `aggregate_type` (`account`,
/// `wallet`, `product`, `order`, `policy_set`). A payload that does not decode is an error, never
/// shown as it is: it might hold anything.
pub fn public_payload(aggregate_type: &str, payload: &Value) -> Result<Value, PublicViewError> {
    fn view<E: serde::de::DeserializeOwned>(
        aggregate_type: &str,
        payload: &Value,
        public: impl Fn(&E) -> Value,
    ) -> Result<Value, PublicViewError> {
        E::deserialize(payload)
            .map(|event| public(&event))
            .map_err(|e| PublicViewError {
                aggregate_type: aggregate_type.to_owned(),
                reason: e.to_string(),
            })
    }
    match aggregate_type {
        "account" => view(aggregate_type, payload, AccountEvent::public_json),
        "wallet" => view(aggregate_type, payload, WalletEvent::public_json),
        "product" => view(aggregate_type, payload, ProductEvent::public_json),
        "order" => view(aggregate_type, payload, OrderEvent::public_json),
        "policy_set" => view(aggregate_type, payload, PolicySetEvent::public_json),
        "projection" => view(aggregate_type, payload, ProjectionEvent::public_json),
        other => Err(PublicViewError {
            aggregate_type: other.to_owned(),
            reason: "unknown aggregate type".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn registered(email: &str, name: &str) -> Value {
        json!({"type": "AccountRegistered", "data": {
            "account_id": "0190a000-0000-7000-8000-000000000001", "email": email, "name": name,
            "password_hash": "[erased]", "role": "customer",
            "registered_at": "2026-01-01T00:00:00Z"}})
    }

    #[test]
    fn an_erased_registration_shows_erased_personal_fields_and_no_hash() {
        let view = public_payload("account", &registered("[erased]", "[erased]")).unwrap();
        assert_eq!(view["data"]["email"], "[erased]");
        assert_eq!(view["data"]["name"], "[erased]");
        assert!(view["data"].get("password_hash").is_none());
    }

    #[test]
    fn a_registration_still_sealed_has_no_public_view() {
        let sealed = registered("pd1:AAAAAAAAAAAAAAAA", "pd1:AAAAAAAAAAAAAAAA");
        assert!(public_payload("account", &sealed).is_err());
    }
}
