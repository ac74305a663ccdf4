//! E-mail addresses.

use serde::{Deserialize, Serialize};

/// A syntactically sane e-mail address, trimmed and lower-cased, at most 254 characters.
///
/// "Sane" means `local@domain` with an ASCII local part of at most 64 characters made of
/// letters, digits and ``!#$%&'*+/=?^_`{|}~.-`` (no leading, trailing or doubled dot), and a
/// domain of at least two dot-separated labels of letters, digits and inner hyphens, the last
/// label at least two characters long. Serialized as the plain string.
///
/// One more value exists: [`Email::erased`] (`"[erased]"`), what an erased account's e-mail
/// reads as once its personal-data key is gone. [`Email::parse`] never returns it (it is not an
/// address); only decoding a stored event does.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize)]
#[serde(into = "String")]
pub struct Email(String);

/// Why a string is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but whitespace.
    #[error("email is empty")]
    Empty,
    /// Longer than [`Email::MAX_LEN`].
    #[error("email is {actual} characters long, at most {max} allowed")]
    TooLong {
        /// The limit.
        max: usize,
        /// Characters found (after trimming).
        actual: usize,
    },
    /// No `@`.
    #[error("email has no '@'")]
    MissingAt,
    /// More than one `@`.
    #[error("email has more than one '@'")]
    MultipleAt,
    /// The part before `@` is empty, too long or has a character or dot placement not allowed.
    #[error("email has an invalid part before the '@'")]
    InvalidLocalPart,
    /// The part after `@` is not a dotted domain name.
    #[error("email has an invalid domain after the '@'")]
    InvalidDomain,
}

/// What a personal field of an erased account reads as.
pub const ERASED: &str = "[erased]";

const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";

impl Email {
    /// The longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;
    /// The longest local part accepted.
    pub const MAX_LOCAL_LEN: usize = 64;

    /// Trims, lower-cases and checks an address.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let actual = trimmed.chars().count();
        if actual > Self::MAX_LEN {
            return Err(EmailError::TooLong {
                max: Self::MAX_LEN,
                actual,
            });
        }
        let normalized = trimmed.to_lowercase();
        let mut parts = normalized.split('@');
        let local = parts.next().unwrap_or_default();
        let domain = parts.next().ok_or(EmailError::MissingAt)?;
        if parts.next().is_some() {
            return Err(EmailError::MultipleAt);
        }
        if !valid_local(local) {
            return Err(EmailError::InvalidLocalPart);
        }
        if !valid_domain(domain) {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Email(normalized))
    }

    /// The value an erased account's e-mail reads as (`"[erased]"`).
    pub fn erased() -> Email {
        Email(ERASED.to_owned())
    }

    /// True for [`Email::erased`].
    pub fn is_erased(&self) -> bool {
        self.0 == ERASED
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= Email::MAX_LOCAL_LEN
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2)
}

/// Decoding accepts an address or the erased value (a stored event of an erased account).
impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value == ERASED {
            return Ok(Email::erased());
        }
        Email::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A strict decoder for input fields (`#[serde(deserialize_with = "…")]`): an address only,
/// never the erased value.
pub fn deserialize_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Email, D::Error> {
    let value = String::deserialize(deserializer)?;
    Email::parse(&value).map_err(serde::de::Error::custom)
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl TryFrom<&str> for Email {
    type Error = EmailError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Email::parse(value)
    }
}

impl std::str::FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_erased_value_decodes_but_never_parses_as_an_address() {
        let read: Email = serde_json::from_value(serde_json::json!(ERASED)).unwrap();
        assert!(read.is_erased());
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::json!(ERASED)
        );
        assert!(Email::parse(ERASED).is_err());
        let strict = deserialize_address(serde_json::json!(ERASED));
        assert!(strict.is_err());
        assert!(!Email::parse("a@b.cd").unwrap().is_erased());
    }
}
