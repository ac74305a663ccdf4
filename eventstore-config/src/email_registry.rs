//! E-mail uniqueness, backed by the `email_claims` table. [`claim`] is the statement a
//! registration's unit of work runs in its transaction (a second claim of one address hits the
//! table's primary key, so two concurrent registrations cannot both win); [`owner`] looks up who
//! holds an address. The domain's [`EmailRegistry`] check is a pure look-up: it writes nothing.

use async_trait::async_trait;
use domain::account::{EmailRegistry, EmailRegistryError};
use domain::Email;
use uuid::Uuid;

use crate::sql::Sql;
use crate::store::Store;

/// The statement claiming `email` for `account_id` (a unique violation when it is taken).
pub fn claim(email: &Email, account_id: Uuid) -> Sql {
    Sql::new("INSERT INTO email_claims (email, account_id, claimed_at) VALUES ($1, $2, $3)")
        .arg(email.as_str())
        .arg(account_id)
        .arg(chrono::Utc::now())
}

/// The id of the account that claimed `email`, if any.
pub async fn owner(store: &Store, email: &Email) -> Result<Option<String>, sqlx::Error> {
    Sql::new("SELECT account_id FROM email_claims WHERE email = $1")
        .arg(email.as_str())
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
