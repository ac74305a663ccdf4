//! E-mail uniqueness, backed by the `email_claims` table, which keeps no address: each claim is
//! the keyed hash of one ([`crate::personal::email_digest`]); erasure deletes it. [`claim`] is
//! the statement a registration's unit of work runs in its transaction (a second claim of one
//! address hits the table's primary key, so two concurrent registrations cannot both win);
//! [`owner`] looks up who holds an address. The domain's [`EmailRegistry`] check is a pure
//! look-up: it writes nothing.

use async_trait::async_trait;
use domain::account::{EmailRegistry, EmailRegistryError};
use domain::Email;
use uuid::Uuid;

use crate::personal::email_digest;
use crate::sql::Sql;
use crate::store::Store;

/// The statement claiming `email` for `account_id` (a unique violation when it is taken).
pub async fn claim(store: &Store, email: &Email, account_id: Uuid) -> Result<Sql, sqlx::Error> {
    let digest = email_digest(store, email).await?;
    Ok(Sql::new(
        "INSERT INTO email_claims (email_hash, account_id, claimed_at) VALUES ($1, $2, $3)",
    )
    .arg(digest)
    .arg(account_id)
    .arg(chrono::Utc::now()))
}

/// The id of the account that claimed `email`, if any (logins look accounts up by e-mail here).
pub async fn owner(store: &Store, email: &Email) -> Result<Option<String>, sqlx::Error> {
    let digest = email_digest(store, email).await?;
    Sql::new("SELECT account_id FROM email_claims WHERE email_hash = $1")
        .arg(digest)
        .fetch_optional::<(String,)>(store)
        .await
        .map(|row| row.map(|(id,)| id))
}

/// The domain's e-mail check over the event store's database.
#[derive(Debug, Clone)]
pub struct SqlEmailRegistry {
    store: Store,
}

impl SqlEmailRegistry {
    /// A registry over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl EmailRegistry for SqlEmailRegistry {
    /// True when `email` is free or already `account_id`'s; writes nothing (the claim is a
    /// statement of the registration's unit of work).
    #[tracing::instrument(skip(self, email), level = "debug")]
    async fn claim(&self, email: &Email, account_id: Uuid) -> Result<bool, EmailRegistryError> {
        let owner = owner(&self.store, email)
            .await
            .map_err(|e| EmailRegistryError::new(e.to_string()))?;
        Ok(owner.is_none_or(|owner| owner == account_id.to_string()))
    }
}
