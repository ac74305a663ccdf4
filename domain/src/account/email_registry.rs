//! The one cross-aggregate check of registration: an e-mail belongs to at most one account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use uuid::Uuid;

use crate::Email;

/// Claims e-mail addresses for accounts, so an address belongs to at most one account.
#[async_trait]
pub trait EmailRegistry: Send + Sync {
    /// Claims `email` for `account_id`.
    ///
    /// Returns `true` when the address now belongs to `account_id` (claimed just now, or
    /// already claimed by the same id, so a retried registration succeeds) and `false` when
    /// another account holds it.
    async fn claim(&self, email: &Email, account_id: Uuid) -> Result<bool, EmailRegistryError>;
}

/// The registry could not answer (an infrastructure failure, not a rejection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email registry unavailable: {message}")]
pub struct EmailRegistryError {
    message: String,
}

impl EmailRegistryError {
    /// An error with a description of what failed.
    pub fn new(message: impl Into<String>) -> Self {
        EmailRegistryError {
            message: message.into(),
        }
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The services the account aggregate needs: the e-mail registry.
#[derive(Clone)]
pub struct AccountServices {
    registry: Arc<dyn EmailRegistry>,
}

impl AccountServices {
    /// Services backed by `registry`.
    pub fn new(registry: Arc<dyn EmailRegistry>) -> Self {
        AccountServices { registry }
    }

    /// The registry.
    pub fn email_registry(&self) -> &dyn EmailRegistry {
        self.registry.as_ref()
    }
}

impl std::fmt::Debug for AccountServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountServices").finish_non_exhaustive()
    }
}

/// A registry held in memory: for tests and single-process tools.
#[derive(Debug, Default)]
pub struct InMemoryEmailRegistry {
    owners: Mutex<HashMap<Email, Uuid>>,
}

impl InMemoryEmailRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Who holds `email`, if anyone.
    pub fn owner(&self, email: &Email) -> Option<Uuid> {
        self.lock()
            .ok()
            .and_then(|owners| owners.get(email).copied())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Email, Uuid>>, EmailRegistryError> {
        self.owners
            .lock()
            .map_err(|_| EmailRegistryError::new("in-memory registry lock poisoned"))
    }
}

#[async_trait]
impl EmailRegistry for InMemoryEmailRegistry {
    async fn claim(&self, email: &Email, account_id: Uuid) -> Result<bool, EmailRegistryError> {
        let mut owners = self.lock()?;
        let owner = *owners.entry(email.clone()).or_insert(account_id);
        Ok(owner == account_id)
    }
}
