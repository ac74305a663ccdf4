//! ISO 4217 currency codes.

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency, serialized as its three-letter code (e.g. `"EUR"`).
///
/// Parsing accepts surrounding whitespace and lower case (`" eur "` is `EUR`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(iso_currency::Currency);

/// Why a string is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// The code is not exactly three characters long.
    #[error("a currency code has 3 letters, got {actual} characters")]
    WrongLength {
        /// Characters found.
        actual: usize,
    },
    /// The code has a character that is not an ASCII letter.
    #[error("a currency code has only the letters A-Z")]
    NotLetters,
    /// Three letters, but not a code ISO 4217 knows.
    #[error("unknown ISO 4217 currency code {code:?}")]
    Unknown {
        /// The (upper-cased) code.
        code: String,
    },
}

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    /// US dollar.
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    /// Pound sterling.
    pub const GBP: Currency = Currency(iso_currency::Currency::GBP);
    /// Swiss franc.
    pub const CHF: Currency = Currency(iso_currency::Currency::CHF);
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);

    /// Parses a three-letter ISO 4217 code.
    pub fn parse(input: &str) -> Result<Currency, CurrencyError> {
        let code = input.trim();
        let actual = code.chars().count();
        if actual != 3 {
            return Err(CurrencyError::WrongLength { actual });
        }
        if !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(CurrencyError::NotLetters);
        }
        let code = code.to_ascii_uppercase();
        iso_currency::Currency::from_code(&code)
            .map(Currency)
            .ok_or(CurrencyError::Unknown { code })
    }

    /// The three-letter code, e.g. `"EUR"`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal digits of the minor unit (2 for EUR, 0 for JPY; 0 when ISO has none).
    pub fn exponent(self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }

    /// The `iso_currency` value behind this code.
    pub fn iso(self) -> iso_currency::Currency {
        self.0
    }
}

impl From<iso_currency::Currency> for Currency {
    fn from(value: iso_currency::Currency) -> Self {
        Currency(value)
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl TryFrom<&str> for Currency {
    type Error = CurrencyError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Currency::parse(value)
    }
}

impl std::str::FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
