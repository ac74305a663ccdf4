//! The eventshop application layer: one function per use case (register, log in, refresh,
//! delete an account, deposit, create/update/restock a product, place/cancel an order,
//! grant/revoke a policy, the saga's commands, recording a skipped dead letter). Each decides on its aggregates through a
//! [`UnitOfWork`](eventstore_config::UnitOfWork) and commits them, with any extra statements
//! (the e-mail claim, an idempotency record), in one transaction; a lost race runs the whole
//! use case again. Outcomes and errors are typed: [`AppError`] keeps "rejected" (with its kind)
//! apart from "failed".
//!
//! Called by the REST handlers, the CLI and the saga alike. May depend on `domain`,
//! `eventstore-config` and `access`; never on a web framework or on the read side.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod error;
pub mod orders;
pub mod policies;
pub mod products;
pub mod projections;
pub mod saga;
pub mod sessions;
mod unit;

use std::sync::Arc;

use access::{Passwords, PolicyCache, Tokens};
use domain::account::AccountServices;
use domain::Currency;
use eventstore_config::{CommandBus, EventMetadata, Sql, Store};

pub use error::{AppError, DomainError, Kind, Rejected};

/// Statements a caller adds to a use case's transaction, made from the use case's outcome
/// before COMMIT (e.g. the stored answer of an idempotent request). Each is named; a unique
/// violation of one answers [`AppError::Duplicate`] with its name.
pub type Record<'a, O> = Option<&'a (dyn Fn(&O) -> Vec<(&'static str, Sql)> + Send + Sync)>;

/// What an accepted single-resource use case did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The aggregate's version after the use case.
    pub version: u64,
    /// Global log position of the last event the use case appended (None if it appended
    /// nothing).
    pub position: Option<i64>,
}

/// Where a request came from: its id, carried into the metadata of the events it appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The request id, if any.
    pub request_id: Option<String>,
}

impl Origin {
    /// Event metadata for a command `actor` issues in this request.
    pub fn metadata(&self, actor: &str) -> EventMetadata {
        let meta = EventMetadata::for_actor(actor);
        match &self.request_id {
            Some(id) => meta.with_request_id(id.clone()).correlated(id.clone()),
            None => meta,
        }
    }
}

/// What the use cases need: the command bus, password hashing, token signing, the policy cache
/// (kept current with what this process commits), the account services and the default
/// wallet currency. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    bus: CommandBus,
    passwords: Passwords,
    tokens: Tokens,
    cache: Arc<PolicyCache>,
    accounts: AccountServices,
    default_currency: Currency,
}

impl App {
    /// The use cases over `bus`.
    pub fn new(
        bus: CommandBus,
        passwords: Passwords,
        tokens: Tokens,
        cache: Arc<PolicyCache>,
        default_currency: Currency,
    ) -> Self {
        let accounts = AccountServices::new(Arc::new(eventstore_config::SqlEmailRegistry::new(
            bus.store().clone(),
        )));
        Self(Arc::new(Inner {
            bus,
            passwords,
            tokens,
            cache,
            accounts,
            default_currency,
        }))
    }

    /// The command bus.
    pub fn bus(&self) -> &CommandBus {
        &self.0.bus
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.0.bus.store()
    }

    /// Password hashing.
    pub fn passwords(&self) -> &Passwords {
        &self.0.passwords
    }

    /// Token signing.
    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    /// The policy cache.
    pub fn cache(&self) -> &Arc<PolicyCache> {
        &self.0.cache
    }

    /// The account aggregate's services (the e-mail check).
    pub fn accounts(&self) -> &AccountServices {
        &self.0.accounts
    }

    /// Currency of wallets opened at registration.
    pub fn default_currency(&self) -> Currency {
        self.0.default_currency
    }
}
