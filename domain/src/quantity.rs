//! Item quantities.

use serde::{Deserialize, Serialize};

/// A count of items in one operation: at least 1, at most [`Quantity::MAX`].
///
/// Serialized as the plain number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

/// Why a number is not a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Zero items.
    #[error("quantity must be at least 1")]
    Zero,
    /// Fewer than zero items.
    #[error("quantity must not be negative")]
    Negative,
    /// More than [`Quantity::MAX`].
    #[error("quantity must be at most {max}")]
    TooLarge {
        /// The limit.
        max: u32,
    },
}

impl Quantity {
    /// The largest quantity accepted.
    pub const MAX: u32 = 1_000_000;

    /// Checks `1 ..= MAX`.
    pub fn new(value: u32) -> Result<Quantity, QuantityError> {
        match value {
            0 => Err(QuantityError::Zero),
            v if v > Self::MAX => Err(QuantityError::TooLarge { max: Self::MAX }),
            v => Ok(Quantity(v)),
        }
    }

    /// The count.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = QuantityError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Quantity::new(value)
    }
}

impl TryFrom<i64> for Quantity {
    type Error = QuantityError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value < 0 {
            return Err(QuantityError::Negative);
        }
        let value = u32::try_from(value).map_err(|_| QuantityError::TooLarge { max: Self::MAX })?;
        Quantity::new(value)
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
