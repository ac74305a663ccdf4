//! The domain's email uniqueness look-up, backed by the `email_claims` table: the claim is an
//! atomic insert (or, when the address is taken, a no-op update that returns its owner), so two
//! concurrent registrations of one address cannot both win.

use async_trait::async_trait;
use domain::account::{EmailRegistry, EmailRegistryError};
use domain::Email;
use uuid::Uuid;

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
        let owner: Result<String, sqlx::Error> = match &self.store {
            Store::Postgres(pool) => {
                sqlx::query_scalar(
                    "INSERT INTO email_claims (email, account_id) VALUES ($1, $2) \
                     ON CONFLICT (email) DO UPDATE SET email = excluded.email \
                     RETURNING account_id",
                )
                .bind(email.as_str())
                .bind(account_id.to_string())
                .fetch_one(pool)
                .await
            }
            Store::Sqlite(pool) => {
                sqlx::query_scalar(
                    "INSERT INTO email_claims (email, account_id) VALUES (?1, ?2) \
                     ON CONFLICT (email) DO UPDATE SET email = excluded.email \
                     RETURNING account_id",
                )
                .bind(email.as_str())
                .bind(account_id.to_string())
                .fetch_one(pool)
                .await
            }
        };
        let owner = owner.map_err(|e| EmailRegistryError::new(e.to_string()))?;
        Ok(owner == account_id.to_string())
    }
}
