//! Amounts of money: integer minor units and a currency, never floats.

use serde::{Deserialize, Serialize};

use crate::Currency;

/// An amount in minor units (cents for EUR) of a currency.
///
/// Serialized as `{"amount": 1390, "currency": "EUR"}`. Any `i64` is representable; whether an
/// amount must be positive is up to the command that carries it. Arithmetic is checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (e.g. cents).
    pub amount: i64,
    /// The currency of `amount`.
    pub currency: Currency,
}

/// Why an arithmetic operation on money failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The two operands are in different currencies.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in 64-bit minor units.
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub const fn new(amount: i64, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// Parses the wire form: minor units and a currency code.
    pub fn parse(amount: i64, currency: &str) -> Result<Money, crate::CurrencyError> {
        Ok(Money::new(amount, Currency::parse(currency)?))
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// Minor units.
    pub const fn amount(&self) -> i64 {
        self.amount
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// True when the amount is greater than zero.
    pub const fn is_positive(&self) -> bool {
        self.amount > 0
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, both in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_add(other.amount)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, both in the same currency.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self × factor`.
    pub fn checked_mul(&self, factor: u32) -> Result<Money, MoneyError> {
        self.amount
            .checked_mul(i64::from(factor))
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }
}

impl std::fmt::Display for Money {
    /// Major units with the currency's decimals, e.g. `13.90 EUR`, `-5 JPY`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exponent = u32::from(self.currency.exponent());
        let sign = if self.amount < 0 { "-" } else { "" };
        let magnitude = self.amount.unsigned_abs();
        match 10u64.checked_pow(exponent) {
            Some(scale) if exponent > 0 => write!(
                f,
                "{sign}{}.{:0width$} {}",
                magnitude / scale,
                magnitude % scale,
                self.currency,
                width = exponent as usize
            ),
            _ => write!(f, "{sign}{magnitude} {}", self.currency),
        }
    }
}
