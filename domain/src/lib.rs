//! The eventshop domain: aggregates, commands, events, errors, value types and ACL matching.
//!
//! This crate is pure. It performs no I/O, reads no clock (times arrive inside commands) and
//! may depend on nothing else in the workspace: every other eventshop crate depends on it,
//! never the other way round.
//!
//! * Value types parse at the edge and re-validate when deserialized: [`Email`], [`Money`] /
//!   [`Currency`], [`Quantity`], [`Name`] and [`Policy`].
//! * Aggregates ([`account`], [`wallet`], [`product`], [`order`], [`policy_set`], and
//!   [`projection`]: an operator's decisions about a log follower) implement
//!   [`cqrs_es::Aggregate`]. Their stored names (aggregate `TYPE`, event types, serde tags)
//!   are explicit string literals and never derived from Rust type names.
//! * Every event type has a schema version and upcasters from older ones ([`upcast`]).
//! * Every aggregate error maps to a [`Rejection`] kind through its `kind()` method.
#![forbid(unsafe_code)]

pub mod account;
pub mod currency;
pub mod email;
pub mod error;
mod event_json;
pub mod metadata;
pub mod money;
pub mod name;
pub mod order;
pub mod policy;
pub mod policy_set;
pub mod product;
pub mod projection;
pub mod public;
pub mod quantity;
pub mod sku;
pub mod text;
pub mod upcast;
pub mod wallet;

pub use currency::{Currency, CurrencyError};
pub use email::{Email, EmailError};
pub use error::Rejection;
pub use money::{Money, MoneyError};
pub use name::{Name, NameError};
pub use policy::{Policy, PolicyError, PolicyPart};
pub use quantity::{Quantity, QuantityError};
pub use text::TextError;
