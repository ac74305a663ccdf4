//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use domain::{Currency, Money, Policy, Quantity};
use uuid::Uuid;

/// A fixed, readable id.
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A fixed instant, `n` minutes after 2025-01-01T00:00:00Z.
pub fn at(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(n)
}

pub fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

pub fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

pub fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

pub fn policy(s: &str) -> Policy {
    Policy::parse(s).unwrap()
}

/// Serializes `value` to JSON and back, asserting the round trip is lossless.
pub fn round_trip<T>(value: &T) -> serde_json::Value
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, value);
    json
}
