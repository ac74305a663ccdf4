//! E-mail uniqueness, backed by the `email_claims` table, which keeps no address: each claim is
//! the keyed hash of one ([`email_digest`]); erasure deletes it. [`claim`] is
//! the statement a registration's unit of work runs in its transaction (a second claim of one
//! address hits the table's primary key, so two concurrent registrations cannot both win);
//! [`owner`] looks up who holds an address. The domain's [`EmailRegistry`] check is a pure
//! look-up: it writes nothing.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use domain::account::{EmailRegistry, EmailRegistryError};
use domain::Email;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

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

/// The statement that deletes `account_id`'s claim (erasure: the address can register again).
pub fn release(account_id: &str) -> Sql {
    Sql::new("DELETE FROM email_claims WHERE account_id = $1").arg(account_id)
}

/// Claims per restoring `INSERT`.
pub const RESTORE_BATCH: usize = 500;

/// One multi-row `INSERT` restoring `claims` — `(e-mail, account id, claimed at)`, at most
/// [`RESTORE_BATCH`] — into an empty store (an import), digested with the target's index
/// `key` ([`index_key`], read before the import's transaction begins).
pub fn restore_claims(
    key: &[u8],
    claims: &[(Email, String, chrono::DateTime<chrono::Utc>)],
) -> Sql {
    let mut insert =
        Sql::new("INSERT INTO email_claims (email_hash, account_id, claimed_at) VALUES ");
    for (i, (email, account_id, at)) in claims.iter().enumerate() {
        insert.push(if i == 0 { "(" } else { ", (" });
        insert
            .bind(digest_with(key, email))
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(*at)
            .push(")");
    }
    insert
}

/// The `secrets` row holding the e-mail index's HMAC key.
const INDEX_KEY_NAME: &str = "email_index_key";

/// The e-mail index's form of `email`: HMAC-SHA256 (hex) of the normalised address, keyed
/// by the database's index key (generated on first use; see [`index_key`]).
pub async fn email_digest(store: &Store, email: &Email) -> Result<String, sqlx::Error> {
    let key = index_key(store).await?;
    Ok(digest_with(&key, email))
}

fn digest_with(key: &[u8], email: &Email) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(email.as_str().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The e-mail index's HMAC key: read from `secrets`, or created there, shared by every process
/// on the database. Creating it also converts the claims written before the index was keyed
/// (plain addresses) to digests, in the same transaction: such claims exist only until then.
pub async fn index_key(store: &Store) -> Result<Vec<u8>, sqlx::Error> {
    if let Some(text) = crate::secrets::get(store, INDEX_KEY_NAME).await? {
        return decode_index_key(&text);
    }
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let mut tx = store.begin().await?;
    let (text, created) =
        crate::secrets::get_or_insert(&mut tx, INDEX_KEY_NAME, B64.encode(fresh)).await?;
    let key = decode_index_key(&text)?;
    if created {
        let plain: Vec<(String,)> = Sql::new("SELECT email_hash FROM email_claims")
            .fetch_all(&mut tx)
            .await?;
        for (address,) in plain {
            let Ok(email) = Email::parse(&address) else {
                continue;
            };
            Sql::new("UPDATE email_claims SET email_hash = $2 WHERE email_hash = $1")
                .arg(&address)
                .arg(digest_with(&key, &email))
                .execute(&mut tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(key)
}

/// The e-mail index's HMAC key read, or created, inside the open transaction `tx`: for an
/// import, whose claims are written in the same transaction (a refused import leaves no key
/// behind). Creates no claims and converts none (the store holds none).
pub async fn index_key_in(tx: &mut crate::sql::Tx) -> Result<Vec<u8>, sqlx::Error> {
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let (text, _) = crate::secrets::get_or_insert(tx, INDEX_KEY_NAME, B64.encode(fresh)).await?;
    decode_index_key(&text)
}

fn decode_index_key(text: &str) -> Result<Vec<u8>, sqlx::Error> {
    B64.decode(text).map_err(|e| {
        sqlx::Error::Decode(format!("the stored e-mail index key is not base64: {e}").into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_digest_is_keyed_and_hides_the_address() {
        let email = Email::parse("Ann@Example.com").unwrap();
        let one = digest_with(b"key one", &email);
        assert_eq!(
            one,
            digest_with(b"key one", &Email::parse("ann@example.com").unwrap())
        );
        assert_ne!(one, digest_with(b"key two", &email));
        assert_eq!(one.len(), 64);
        assert!(!one.contains("ann"));
    }
}
