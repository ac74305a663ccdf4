//! The public JSON view of events: what may leave the process wherever an event is shown
//! (`history`, `events tail`, audit, the relay, subscriptions, the console). Each event type
//! writes its own view next to its definition (`AccountEvent::public_json`, …, with the helpers
//! of the `event_json` module); this module dispatches from a stored payload.

use serde_json::Value;

use crate::account::AccountEvent;
use crate::order::OrderEvent;
use crate::policy_set::PolicySetEvent;
use crate::product::ProductEvent;
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

/// The public view of a stored `payload` of an aggregate of `aggregate_type` (`account`,
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
        other => Err(PublicViewError {
            aggregate_type: other.to_owned(),
            reason: "unknown aggregate type".to_owned(),
        }),
    }
}
