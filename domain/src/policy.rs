//! ACL policies (`sub:action:resource_type:resource_id`) and their matching.

use serde::{Deserialize, Serialize};

/// One access rule: `subject:action:resource_type:resource_id`, e.g. `10:get:orders:15`.
///
/// Each part is a token of 1 to [`Policy::MAX_PART_LEN`] characters without `:`, whitespace
/// or control characters. In the action, resource type and resource id, a part that is exactly
/// `*` is a wildcard matching anything in that position; `*` may not be mixed with other
/// characters. The subject is always one account id: a `*` subject would grant nothing (a
/// caller's policies are looked up by its own id), so it is refused. An admin holds
/// `<subject>:*:*:*`.
/// Serialized as the plain string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Policy {
    subject: String,
    action: String,
    resource_type: String,
    resource_id: String,
}

/// A position in a policy, used to say which part is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyPart {
    /// The first part: who.
    Subject,
    /// The second part: what may be done.
    Action,
    /// The third part: the kind of resource.
    ResourceType,
    /// The fourth part: which resource.
    ResourceId,
}

impl PolicyPart {
    const ALL: [PolicyPart; 4] = [
        PolicyPart::Subject,
        PolicyPart::Action,
        PolicyPart::ResourceType,
        PolicyPart::ResourceId,
    ];

    /// `subject`, `action`, `resource_type` or `resource_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyPart::Subject => "subject",
            PolicyPart::Action => "action",
            PolicyPart::ResourceType => "resource_type",
            PolicyPart::ResourceId => "resource_id",
        }
    }
}

impl std::fmt::Display for PolicyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not four `:`-separated parts.
    #[error("a policy has 4 ':'-separated parts (subject:action:resource_type:resource_id), got {found}")]
    WrongPartCount {
        /// Parts found.
        found: usize,
    },
    /// A part is empty.
    #[error("policy {part} is empty")]
    EmptyPart {
        /// Which part.
        part: PolicyPart,
    },
    /// A part is longer than [`Policy::MAX_PART_LEN`].
    #[error("policy {part} is longer than {max} characters")]
    PartTooLong {
        /// Which part.
        part: PolicyPart,
        /// The limit.
        max: usize,
    },
    /// A part contains whitespace, a control character or a `:`.
    #[error("policy {part} contains whitespace, a control character or ':'")]
    InvalidCharacter {
        /// Which part.
        part: PolicyPart,
    },
    /// A part mixes `*` with other characters.
    #[error("policy {part} may be '*' or a name, not a mix")]
    PartialWildcard {
        /// Which part.
        part: PolicyPart,
    },
    /// The subject is `*`: policies are held per account, so it must name one.
    #[error("policy subject must be an account id, not '*'")]
    WildcardSubject,
}

/// The wildcard token.
pub const WILDCARD: &str = "*";

impl Policy {
    /// The longest part accepted, in characters.
    pub const MAX_PART_LEN: usize = 100;

    /// Parses `subject:action:resource_type:resource_id` (surrounding whitespace is ignored).
    pub fn parse(input: &str) -> Result<Policy, PolicyError> {
        let parts: Vec<&str> = input.trim().split(':').collect();
        match parts.as_slice() {
            [subject, action, resource_type, resource_id] => {
                Policy::new(subject, action, resource_type, resource_id)
            }
            _ => Err(PolicyError::WrongPartCount { found: parts.len() }),
        }
    }

    /// Builds a policy from its four parts, checking each.
    pub fn new(
        subject: &str,
        action: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Policy, PolicyError> {
        let values = [subject, action, resource_type, resource_id];
        for (part, value) in PolicyPart::ALL.into_iter().zip(values) {
            check_part(part, value)?;
        }
        if subject == WILDCARD {
            return Err(PolicyError::WildcardSubject);
        }
        Ok(Policy {
            subject: subject.to_owned(),
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
        })
    }

    /// `<subject>:*:*:*`: everything, for one subject.
    pub fn admin(subject: &str) -> Result<Policy, PolicyError> {
        Policy::new(subject, WILDCARD, WILDCARD, WILDCARD)
    }

    /// The account the policy is for.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The action allowed (`*`: any).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The kind of resource (`*`: any).
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The resource (`*`: any).
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// True for `<subject>:*:*:*`.
    pub fn is_admin(&self) -> bool {
        self.action == WILDCARD && self.resource_type == WILDCARD && self.resource_id == WILDCARD
    }

    /// Whether this policy lets `subject` do `action` on `resource_type`/`resource_id`.
    ///
    /// A `*` in the policy matches anything in its position; every other part must be equal
    /// (case-sensitive). A `*` in the request is not a wildcard: it only matches a `*` policy.
    pub fn allows(
        &self,
        subject: &str,
        action: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> bool {
        matches(&self.subject, subject)
            && matches(&self.action, action)
            && matches(&self.resource_type, resource_type)
            && matches(&self.resource_id, resource_id)
    }
}

/// Whether any of `policies` allows the request (see [`Policy::allows`]).
pub fn any_allows<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    subject: &str,
    action: &str,
    resource_type: &str,
    resource_id: &str,
) -> bool {
    policies
        .into_iter()
        .any(|p| p.allows(subject, action, resource_type, resource_id))
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == WILDCARD || pattern == value
}

fn check_part(part: PolicyPart, value: &str) -> Result<(), PolicyError> {
    if value.is_empty() {
        return Err(PolicyError::EmptyPart { part });
    }
    if value.chars().count() > Policy::MAX_PART_LEN {
        return Err(PolicyError::PartTooLong {
            part,
            max: Policy::MAX_PART_LEN,
        });
    }
    if value
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(PolicyError::InvalidCharacter { part });
    }
    if value != WILDCARD && value.contains('*') {
        return Err(PolicyError::PartialWildcard { part });
    }
    Ok(())
}

impl TryFrom<String> for Policy {
    type Error = PolicyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Policy::parse(&value)
    }
}

impl TryFrom<&str> for Policy {
    type Error = PolicyError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Policy::parse(value)
    }
}

impl std::str::FromStr for Policy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s)
    }
}

impl From<Policy> for String {
    fn from(value: Policy) -> Self {
        value.to_string()
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.subject, self.action, self.resource_type, self.resource_id
        )
    }
}
