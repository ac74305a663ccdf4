//! Human-readable names (of people and of products).

use serde::{Deserialize, Serialize};

/// A trimmed name of 1 to [`Name::MAX_LEN`] characters without control characters.
///
/// Serialized as the plain string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a string is not a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing but whitespace.
    #[error("name is empty")]
    Empty,
    /// Longer than [`Name::MAX_LEN`] characters after trimming.
    #[error("name is {actual} characters long, at most {max} allowed")]
    TooLong {
        /// The limit.
        max: usize,
        /// Characters found.
        actual: usize,
    },
    /// Has a control character such as a newline.
    #[error("name contains a control character")]
    ControlCharacter,
}

impl Name {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 200;

    /// Trims and checks a name.
    pub fn parse(input: &str) -> Result<Name, NameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        let actual = trimmed.chars().count();
        if actual > Self::MAX_LEN {
            return Err(NameError::TooLong {
                max: Self::MAX_LEN,
                actual,
            });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Name(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Name::parse(&value)
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Name::parse(value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
