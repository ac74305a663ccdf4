//! The set of ACL policies held by one subject (aggregate id: the subject string).
//!
//! Granting a policy already held, revoking one not held and revoking all of nothing are
//! no-ops: they succeed and record no event.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Policy, Rejection};

/// Commands to a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySetCommand {
    /// Adds a policy.
    Grant {
        /// The policy.
        policy: Policy,
    },
    /// Removes a policy.
    Revoke {
        /// The policy.
        policy: Policy,
    },
    /// Removes every policy.
    RevokeAll,
}

/// What happened to a policy set. Stored as `{"type": "<event_type>", "data": {..}}` (unit
/// variants as `{"type": "<event_type>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PolicySetEvent {
    /// A policy was added.
    #[serde(rename = "PolicyGranted")]
    PolicyGranted {
        /// The policy.
        policy: Policy,
    },
    /// A policy was removed.
    #[serde(rename = "PolicyRevoked")]
    PolicyRevoked {
        /// The policy.
        policy: Policy,
    },
    /// Every policy was removed.
    #[serde(rename = "AllPoliciesRevoked")]
    AllPoliciesRevoked,
}

impl PolicySetEvent {
    /// The event as it may leave the process (`history`, `events tail`, the relay, …): it
    /// holds no secret, so this is its stored form.
    pub fn public_json(&self) -> serde_json::Value {
        crate::event_json::stored_json(self)
    }
}

impl DomainEvent for PolicySetEvent {
    fn event_type(&self) -> String {
        match self {
            PolicySetEvent::PolicyGranted { .. } => "PolicyGranted",
            PolicySetEvent::PolicyRevoked { .. } => "PolicyRevoked",
            PolicySetEvent::AllPoliciesRevoked => "AllPoliciesRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version_text(&self.event_type())
    }
}

/// Why a policy set refused a command. It never does: every command is valid (repeats are
/// no-ops), so this type has no values. It exists because the aggregate needs an error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicySetError {}

impl PolicySetError {
    /// The kind of rejection (there is none).
    pub fn kind(&self) -> Rejection {
        match *self {}
    }
}

/// The policies one subject holds, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySet {
    policies: BTreeSet<Policy>,
}

impl PolicySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The policies, in order.
    pub fn policies(&self) -> &BTreeSet<Policy> {
        &self.policies
    }

    /// True when the set holds `policy` (exactly, not by matching).
    pub fn contains(&self, policy: &Policy) -> bool {
        self.policies.contains(policy)
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether any policy allows the request (see [`Policy::allows`]).
    pub fn allows(
        &self,
        subject: &str,
        action: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> bool {
        crate::policy::any_allows(&self.policies, subject, action, resource_type, resource_id)
    }
}

impl FromIterator<Policy> for PolicySet {
    fn from_iter<T: IntoIterator<Item = Policy>>(iter: T) -> Self {
        PolicySet {
            policies: iter.into_iter().collect(),
        }
    }
}

impl Aggregate for PolicySet {
    const TYPE: &'static str = "policy_set";
    type Command = PolicySetCommand;
    type Event = PolicySetEvent;
    type Error = PolicySetError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PolicySetCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PolicySetError> {
        let event = match command {
            PolicySetCommand::Grant { policy } if !self.contains(&policy) => {
                Some(PolicySetEvent::PolicyGranted { policy })
            }
            PolicySetCommand::Revoke { policy } if self.contains(&policy) => {
                Some(PolicySetEvent::PolicyRevoked { policy })
            }
            PolicySetCommand::RevokeAll if !self.is_empty() => {
                Some(PolicySetEvent::AllPoliciesRevoked)
            }
            _ => None,
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PolicySetEvent) {
        match event {
            PolicySetEvent::PolicyGranted { policy } => {
                self.policies.insert(policy);
            }
            PolicySetEvent::PolicyRevoked { policy } => {
                self.policies.remove(&policy);
            }
            PolicySetEvent::AllPoliciesRevoked => self.policies.clear(),
        }
    }
}
