//! Event metadata: who caused an event and in which request and causal chain.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use domain::metadata::SYSTEM_ACTOR;
use domain::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID, REQUEST_ID};

/// The metadata stored with every event a command appends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Account id of the caller, or `system`.
    pub actor: Option<String>,
    /// Groups every event of one business flow (e.g. an order and its saga steps).
    pub correlation_id: Option<String>,
    /// The event (or request) that directly caused this one.
    pub causation_id: Option<String>,
    /// The HTTP request (or CLI invocation) that issued the command.
    pub request_id: Option<String>,
}

impl EventMetadata {
    /// Metadata for a command issued by `actor`, starting a new correlation.
    pub fn for_actor(actor: impl Into<String>) -> Self {
        let request_id = Uuid::now_v7().to_string();
        Self {
            actor: Some(actor.into()),
            correlation_id: Some(request_id.clone()),
            causation_id: None,
            request_id: Some(request_id),
        }
    }

    /// Metadata for a command eventshop issues itself.
    pub fn system() -> Self {
        Self::for_actor(SYSTEM_ACTOR)
    }

    /// The same metadata with another correlation id.
    pub fn correlated(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// The same metadata with a causation id.
    pub fn caused_by(mut self, causation_id: impl Into<String>) -> Self {
        self.causation_id = Some(causation_id.into());
        self
    }

    /// The same metadata with a request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// The map cqrs-es stores.
    pub fn to_map(&self) -> HashMap<String, String> {
        [
            (ACTOR, &self.actor),
            (CORRELATION_ID, &self.correlation_id),
            (CAUSATION_ID, &self.causation_id),
            (REQUEST_ID, &self.request_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
        .collect()
    }

    /// Reads the stored map back; unknown keys are ignored.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        Self {
            actor: map.get(ACTOR).cloned(),
            correlation_id: map.get(CORRELATION_ID).cloned(),
            causation_id: map.get(CAUSATION_ID).cloned(),
            request_id: map.get(REQUEST_ID).cloned(),
        }
    }

    /// Reads stored JSON metadata; anything that is not an object of strings yields empty fields.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let map: HashMap<String, String> = value
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Self::from_map(&map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_stored_map() {
        let meta = EventMetadata::for_actor("a1")
            .correlated("c1")
            .caused_by("e1")
            .with_request_id("r1");
        assert_eq!(EventMetadata::from_map(&meta.to_map()), meta);
        let json = serde_json::to_value(meta.to_map()).unwrap();
        assert_eq!(EventMetadata::from_json(&json), meta);
    }

    #[test]
    fn absent_fields_are_not_stored() {
        let meta = EventMetadata {
            actor: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(meta.to_map().len(), 1);
    }
}
