//! argon2id password hashing, with a bound on how many hashes run at once.
//!
//! A hash costs tens of milliseconds of one core on purpose. Unbounded, a flood of logins (or
//! registrations) takes every core and slows every other request; [`Passwords`] lets at most
//! `password_hash_concurrency` hashes run at a time (0: half the cores, at least one). A request
//! that finds them all busy waits, in arrival order, at most `password_hash_wait_ms`, and is then
//! refused with [`PasswordError::Busy`] (the APIs answer 503 with `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use eventstore_config::Settings;
use tokio::sync::Semaphore;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed busy for the whole wait.
    #[error("the server is busy checking passwords; retry in {} s", retry_after.as_secs())]
    Busy {
        /// When to retry.
        retry_after: Duration,
    },
    /// Hashing failed (a broken stored hash, a panicked thread).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Hashes and verifies passwords, at most a bounded number at a time (cheap to clone).
#[derive(Debug, Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl Passwords {
    /// At most `concurrency` hashes at once (0: half the cores, at least one); a request waits
    /// at most `wait` for a slot.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1)
        } else {
            concurrency
        };
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            wait,
        }
    }

    /// As the settings `password_hash_concurrency` and `password_hash_wait_ms` say.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(
            settings.password_hash_concurrency as usize,
            Duration::from_millis(settings.password_hash_wait_ms),
        )
    }

    /// An argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _slot = self.slot().await?;
        Ok(hash_password(password).await?)
    }

    /// Whether `password` matches the stored argon2 `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        let _slot = self.slot().await?;
        Ok(verify_password(password, hash).await?)
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PasswordError> {
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(PasswordError::Internal(closed.into())),
            Err(_) => Err(PasswordError::Busy {
                retry_after: Duration::from_secs(1),
            }),
        }
    }
}

/// Hashes a password with argon2id on a blocking thread, without the concurrency bound (use
/// [`Passwords::hash`] on request paths).
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `password` matches the stored argon2 `hash`, without the concurrency bound (use
/// [`Passwords::verify`] on request paths).
pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::new(1, Duration::from_secs(5));
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(passwords
            .verify("correct horse".into(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords.verify("wrong horse".into(), hash).await.unwrap());
    }

    #[tokio::test]
    async fn given_every_slot_busy_when_the_wait_runs_out_then_the_request_is_refused_as_busy() {
        let passwords = Passwords::new(1, Duration::from_millis(50));
        let held = passwords.slot().await.unwrap();
        let refused = passwords.hash("correct horse".into()).await;
        assert!(
            matches!(refused, Err(PasswordError::Busy { retry_after }) if retry_after.as_secs() == 1)
        );
        drop(held);
        assert!(passwords.hash("correct horse".into()).await.is_ok());
    }
}
