//! The domain's email uniqueness look-up, backed by the `email_claims` table: the claim is an
//! atomic insert (or, when the address is taken, a no-op update that returns its owner), so two
//! concurrent registrations of one address cannot both win. The table keeps no address: each
//! claim is the keyed hash of one ([`crate::personal::email_digest`]); erasure deletes it.

use async_trait::async_trait;
use domain::account::{EmailRegistry, EmailRegistryError};
use domain::Email;
use uuid::Uuid;

use crate::personal::email_digest;
use crate::sql::Sql;
use crate::store::Store;

/// Email claims in the event store's database.
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
    #[tracing::instrument(skip(self, email), level = "debug")]
    async fn claim(&self, email: &Email, account_id: Uuid) -> Result<bool, EmailRegistryError> {
        let unavailable = |e: sqlx::Error| EmailRegistryError::new(e.to_string());
        let digest = email_digest(&self.store, email)
            .await
            .map_err(unavailable)?;
        let (owner,): (String,) = Sql::new(
            "INSERT INTO email_claims (email_hash, account_id) VALUES ($1, $2) \
             ON CONFLICT (email_hash) DO UPDATE SET email_hash = excluded.email_hash \
             RETURNING account_id",
        )
        .arg(digest)
        .arg(account_id)
        .fetch_one(&self.store)
        .await
        .map_err(unavailable)?;
        Ok(owner == account_id.to_string())
    }
}

/// The account id that claimed `email`, if any (logins look accounts up by e-mail here).
pub async fn owner(store: &Store, email: &Email) -> Result<Option<String>, sqlx::Error> {
    let digest = email_digest(store, email).await?;
    let owner: Option<(String,)> =
        Sql::new("SELECT account_id FROM email_claims WHERE email_hash = $1")
            .arg(digest)
            .fetch_optional(store)
            .await?;
    Ok(owner.map(|(id,)| id))
}
