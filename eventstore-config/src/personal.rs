//! Personal data in the log, crypto-shredded: the personal fields of account events are sealed
//! with the account's own key, kept outside the log; erasure deletes the key.
//!
//! - **Sealing** happens where events are serialized for the store ([`seal_events`], called by
//!   the append): each field the domain lists as personal ([`personal_fields`]) is replaced by
//!   `"pd1:" + base64(nonce ‖ AES-256-GCM ciphertext)`, with a random 96-bit nonce per value
//!   and the account id as associated data. The key (random, 256-bit) is created with the
//!   account's first sealed event, in `personal_data_keys`.
//! - **Opening** happens wherever stored rows become events ([`open_events`],
//!   [`open_payloads`]): one statement fetches the keys of the accounts a batch needs, and only
//!   for batches that hold sealed values. Keys are not cached: after an erasure in one process,
//!   no other process can open with a key it kept. A sealed value whose key is gone reads
//!   [`ERASED`]. Values stored before sealing existed (plaintext) load as they are.
//! - **The e-mail index** ([`email_digest`]) keeps HMAC-SHA256 digests of normalised
//!   addresses, keyed by a secret generated once per database (the `secrets` table).
//! - **Erasure** ([`erase_account`]) deletes the key, the e-mail claim and the account's
//!   snapshots, then appends `AccountErased`.

use std::collections::{BTreeSet, HashMap};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::Utc;
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;

use crate::read_error::ReadError;
use crate::sql::{Executor, Sql};
use crate::store::Store;

pub use domain::email::ERASED;

/// The prefix of a sealed value (version 1 of the format).
pub const SEALED_PREFIX: &str = "pd1:";

/// The aggregate type whose events carry personal data; its id is the key's owner.
pub(crate) const PERSONAL_AGGREGATE: &str = "account";

/// Bytes of an AES-GCM nonce.
const NONCE_LEN: usize = 12;

/// Keys looked up per statement.
const KEYS_PER_STATEMENT: usize = 500;

/// The personal fields of `data` in a stored event of this type (empty for every event that
/// holds no personal data).
pub fn personal_fields(aggregate_type: &str, event_type: &str) -> &'static [&'static str] {
    match (aggregate_type, event_type) {
        (PERSONAL_AGGREGATE, "AccountRegistered") => domain::account::PERSONAL_FIELDS,
        _ => &[],
    }
}

/// A sealed value that does not open with its account's key (tampered with, or not sealed by
/// eventshop).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed personal field does not open: {0}")]
pub struct OpenError(&'static str);

/// An account's personal-data key (AES-256-GCM).
pub struct DataKey(Key<Aes256Gcm>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> Self {
        DataKey(Aes256Gcm::generate_key(OsRng))
    }

    /// A key in its stored form (base64 of 32 bytes), as `personal_data_keys` and an export
    /// hold it; None when it is not one.
    pub fn from_stored(text: &str) -> Option<Self> {
        Self::from_text(text)
    }

    fn from_text(text: &str) -> Option<Self> {
        let bytes = B64.decode(text).ok()?;
        (bytes.len() == 32).then(|| DataKey(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    /// The stored form, for the crate's tests.
    #[cfg(test)]
    pub(crate) fn to_stored(&self) -> String {
        self.to_text()
    }

    fn to_text(&self) -> String {
        B64.encode(self.0.as_slice())
    }

    /// `plaintext` sealed for account `account_id` (the associated data: a value sealed for
    /// one account does not open as another's).
    pub fn seal(&self, account_id: &str, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: account_id.as_bytes(),
        };
        // AES-GCM refuses only messages beyond 64 GiB: a field is never near that.
        let ciphertext = Aes256Gcm::new(&self.0)
            .encrypt(&nonce, payload)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", B64.encode(bytes))
    }

    /// The plaintext of a value [`seal`](Self::seal)ed for `account_id`.
    pub fn open(&self, account_id: &str, sealed: &str) -> Result<String, OpenError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(OpenError("no prefix"))?;
        let bytes = B64.decode(body).map_err(|_| OpenError("not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| OpenError("authentication failed"))?;
        String::from_utf8(plaintext).map_err(|_| OpenError("not UTF-8"))
    }
}

/// Bytes of an AES-GCM authentication tag.
const TAG_LEN: usize = 16;

/// True when `value` is a sealed value: the prefix, then base64 of at least a nonce and a tag.
/// (A plaintext value stored before sealing existed that merely starts with the prefix is not.)
pub fn is_sealed(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.strip_prefix(SEALED_PREFIX)
            .and_then(|body| B64.decode(body).ok())
            .is_some_and(|bytes| bytes.len() >= NONCE_LEN + TAG_LEN)
    })
}

fn has_sealed(payload: &Value) -> bool {
    payload
        .get("data")
        .and_then(Value::as_object)
        .is_some_and(|data| data.values().any(is_sealed))
}

/// `payload`'s personal `fields` sealed with `key` (values already sealed or erased stay).
pub fn seal_payload(key: &DataKey, account_id: &str, payload: &mut Value, fields: &[&str]) {
    if let Some(data) = payload.get_mut("data") {
        seal_object(key, account_id, data, fields);
    }
}

/// The string `fields` of the JSON object `object` sealed with `key`.
fn seal_object(key: &DataKey, account_id: &str, object: &mut Value, fields: &[&str]) {
    let Some(data) = object.as_object_mut() else {
        return;
    };
    for field in fields {
        if let Some(value) = data.get_mut(*field) {
            // Every value, whatever it reads like: a name typed as "pd1:…" is sealed too.
            if let Some(text) = value.as_str() {
                *value = Value::String(key.seal(account_id, text));
            }
        }
    }
}

/// `payload`'s sealed values opened with `key`, or [`ERASED`] without one.
pub fn open_payload(
    key: Option<&DataKey>,
    account_id: &str,
    payload: &mut Value,
) -> Result<(), OpenError> {
    match payload.get_mut("data") {
        Some(data) => open_object(key, account_id, data),
        None => Ok(()),
    }
}

/// The sealed values of the JSON object `object` opened with `key`, or [`ERASED`].
fn open_object(
    key: Option<&DataKey>,
    account_id: &str,
    object: &mut Value,
) -> Result<(), OpenError> {
    let Some(data) = object.as_object_mut() else {
        return Ok(());
    };
    for value in data.values_mut() {
        if !is_sealed(value) {
            continue;
        }
        let opened = match (key, value.as_str()) {
            (Some(key), Some(sealed)) => key.open(account_id, sealed)?,
            _ => ERASED.to_owned(),
        };
        *value = Value::String(opened);
    }
    Ok(())
}

/// Seals the personal fields of `rows` (about to be appended) with their accounts' keys,
/// creating a key with an account's first sealed event. No statement runs for rows without
/// personal data.
pub async fn seal_events<'a>(
    on: impl Into<Executor<'a>>,
    rows: &mut [SerializedEvent],
) -> Result<(), ReadError> {
    let mut on = on.into();
    let mut keys: HashMap<String, DataKey> = HashMap::new();
    for row in rows.iter_mut() {
        let fields = personal_fields(&row.aggregate_type, &row.event_type);
        if fields.is_empty() {
            continue;
        }
        if !keys.contains_key(&row.aggregate_id) {
            let key = key_for_sealing(on.reborrow(), &row.aggregate_id).await?;
            keys.insert(row.aggregate_id.clone(), key);
        }
        if let Some(key) = keys.get(&row.aggregate_id) {
            seal_payload(key, &row.aggregate_id, &mut row.payload, fields);
        }
    }
    Ok(())
}

/// The account's key, created if it has none (one statement).
async fn key_for_sealing(on: Executor<'_>, account_id: &str) -> Result<DataKey, ReadError> {
    let (text,): (String,) = Sql::new(
        "INSERT INTO personal_data_keys (account_id, key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id) DO UPDATE SET account_id = excluded.account_id \
         RETURNING key",
    )
    .arg(account_id)
    .arg(DataKey::generate().to_text())
    .arg(Utc::now())
    .fetch_one(on)
    .await?;
    DataKey::from_text(&text).ok_or_else(|| unreadable_key(account_id))
}

fn unreadable_key(account_id: &str) -> ReadError {
    ReadError::Corrupt {
        aggregate_type: PERSONAL_AGGREGATE.to_owned(),
        aggregate_id: account_id.to_owned(),
        version: 0,
        reason: "its personal-data key is not 32 bytes of base64".to_owned(),
    }
}

/// The keys of `account_ids` that exist (erased accounts have none).
async fn keys_of(
    mut on: Executor<'_>,
    account_ids: &BTreeSet<&str>,
) -> Result<HashMap<String, DataKey>, ReadError> {
    let ids: Vec<&str> = account_ids.iter().copied().collect();
    let mut keys = HashMap::new();
    for chunk in ids.chunks(KEYS_PER_STATEMENT) {
        let mut sql = Sql::new("SELECT account_id, key FROM personal_data_keys WHERE TRUE");
        sql.in_list("account_id", chunk.iter().copied());
        let rows: Vec<(String, String)> = sql.fetch_all(on.reborrow()).await?;
        for (id, text) in rows {
            let key = DataKey::from_text(&text).ok_or_else(|| unreadable_key(&id))?;
            keys.insert(id, key);
        }
    }
    Ok(keys)
}

/// One account's personal-data key in its stored form (base64), for export and import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct StoredKey {
    /// The account.
    pub account_id: String,
    /// The key, base64 of 32 bytes.
    pub key: String,
}

/// Up to `limit` stored keys with account ids after `after`, in account-id order (a keyset
/// page; `""` for the first).
pub async fn stored_keys_after(
    store: &Store,
    after: &str,
    limit: u32,
) -> Result<Vec<StoredKey>, sqlx::Error> {
    Sql::new(
        "SELECT account_id, key FROM personal_data_keys WHERE account_id > $1 \
          ORDER BY account_id LIMIT $2",
    )
    .arg(after)
    .arg(i64::from(limit.max(1)))
    .fetch_all(store)
    .await
}

/// Keys per restoring `INSERT`.
pub const RESTORE_KEYS_BATCH: usize = 500;

/// One multi-row `INSERT` restoring stored `keys` (at most [`RESTORE_KEYS_BATCH`]) into an
/// empty store (an import).
pub fn restore_keys(keys: &[StoredKey]) -> Sql {
    let now = Utc::now();
    let mut insert =
        Sql::new("INSERT INTO personal_data_keys (account_id, key, created_at) VALUES ");
    for (i, key) in keys.iter().enumerate() {
        insert.push(if i == 0 { "(" } else { ", (" });
        insert
            .bind(&key.account_id)
            .push(", ")
            .bind(&key.key)
            .push(", ")
            .bind(now)
            .push(")");
    }
    insert
}

/// Opens the sealed values of stored payloads `(aggregate_type, aggregate_id, payload)`: with
/// the account's key, or as [`ERASED`] once the key is gone. One statement for all of them,
/// none when no payload holds a sealed value.
pub async fn open_payloads<'a>(
    on: impl Into<Executor<'a>>,
    mut payloads: Vec<(&str, &str, &mut Value)>,
) -> Result<(), ReadError> {
    payloads.retain(|(aggregate_type, _, payload)| {
        *aggregate_type == PERSONAL_AGGREGATE && has_sealed(payload)
    });
    if payloads.is_empty() {
        return Ok(());
    }
    let ids: BTreeSet<&str> = payloads.iter().map(|(_, id, _)| *id).collect();
    let keys = keys_of(on.into(), &ids).await?;
    for (aggregate_type, id, payload) in payloads {
        open_payload(keys.get(id), id, payload).map_err(|e| ReadError::Corrupt {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id.to_owned(),
            version: 0,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Seals the personal fields of a snapshot (an aggregate's folded state: an account's e-mail,
/// name and password hash) before it is stored, when the account has a key. An account
/// without one (erased, or registered before sealing existed) is stored as folded: erased
/// values, or the plaintext its log holds too.
pub async fn seal_snapshot(
    store: &Store,
    aggregate_type: &str,
    id: &str,
    state: &mut Value,
) -> Result<(), ReadError> {
    if aggregate_type != PERSONAL_AGGREGATE {
        return Ok(());
    }
    let ids = BTreeSet::from([id]);
    if let Some(key) = keys_of(store.into(), &ids).await?.get(id) {
        seal_object(key, id, state, domain::account::PERSONAL_FIELDS);
    }
    Ok(())
}

/// Opens the sealed values of a stored snapshot (or reads them [`ERASED`]).
pub async fn open_snapshot(
    store: &Store,
    aggregate_type: &str,
    id: &str,
    state: &mut Value,
) -> Result<(), ReadError> {
    let sealed = state
        .as_object()
        .is_some_and(|fields| fields.values().any(is_sealed));
    if aggregate_type != PERSONAL_AGGREGATE || !sealed {
        return Ok(());
    }
    let ids = BTreeSet::from([id]);
    let keys = keys_of(store.into(), &ids).await?;
    open_object(keys.get(id), id, state).map_err(|e| ReadError::Corrupt {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_owned(),
        version: 0,
        reason: format!("snapshot: {e}"),
    })
}

/// Deletes `account_id`'s personal-data key (its sealed fields read "[erased]" from then on),
/// as part of its erasure ([`crate::erasure::forget`]).
pub(crate) async fn delete_key(
    on: &mut crate::sql::Tx,
    account_id: &str,
) -> Result<(), sqlx::Error> {
    Sql::new("DELETE FROM personal_data_keys WHERE account_id = $1")
        .arg(account_id)
        .execute(on)
        .await?;
    Ok(())
}

/// Replaces plaintext personal `fields` of `payload` by [`ERASED`]; true if any was.
pub(crate) fn erase_plaintext(payload: &mut Value, fields: &[&str]) -> bool {
    let Some(data) = payload.get_mut("data").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    for field in fields {
        if let Some(value) = data.get_mut(*field) {
            if !is_sealed(value) && value.as_str().is_some_and(|t| t != ERASED) {
                *value = Value::String(ERASED.to_owned());
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ANN: &str = "0190a000-0000-7000-8000-000000000001";

    fn registered() -> Value {
        json!({"type": "AccountRegistered", "data": {
            "account_id": ANN, "email": "ann@example.com", "name": "Ann",
            "password_hash": "$argon2id$x", "role": "customer",
            "registered_at": "2026-01-01T00:00:00Z"}})
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_account_only() {
        let key = DataKey::generate();
        let sealed = key.seal(ANN, "ann@example.com");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("ann@example.com"));
        assert_ne!(
            sealed,
            key.seal(ANN, "ann@example.com"),
            "a fresh nonce per value"
        );
        assert_eq!(key.open(ANN, &sealed).unwrap(), "ann@example.com");
        assert!(key.open("another-account", &sealed).is_err());
        assert!(DataKey::generate().open(ANN, &sealed).is_err());
        let stored = DataKey::from_text(&key.to_text()).unwrap();
        assert_eq!(stored.open(ANN, &sealed).unwrap(), "ann@example.com");
    }

    #[test]
    fn given_a_registration_when_sealed_then_only_its_personal_fields_are_unreadable() {
        let key = DataKey::generate();
        let mut payload = registered();
        seal_payload(&key, ANN, &mut payload, domain::account::PERSONAL_FIELDS);
        let text = payload.to_string();
        for plain in ["ann@example.com", "\"Ann\"", "$argon2id$x"] {
            assert!(!text.contains(plain), "{plain} left in {text}");
        }
        assert_eq!(payload["data"]["role"], "customer");
        assert_eq!(payload["data"]["account_id"], ANN);
        open_payload(Some(&key), ANN, &mut payload).unwrap();
        assert_eq!(payload, registered());
    }

    #[test]
    fn given_a_sealed_registration_when_its_key_is_gone_then_it_reads_erased_and_still_folds() {
        let key = DataKey::generate();
        let mut payload = registered();
        seal_payload(&key, ANN, &mut payload, domain::account::PERSONAL_FIELDS);
        open_payload(None, ANN, &mut payload).unwrap();
        for field in domain::account::PERSONAL_FIELDS {
            assert_eq!(payload["data"][field], ERASED);
        }
        let event: domain::account::AccountEvent = serde_json::from_value(payload).unwrap();
        let mut account = domain::account::Account::default();
        cqrs_es::Aggregate::apply(&mut account, event);
        assert!(account.email().is_some_and(domain::Email::is_erased));
        assert_eq!(account.name(), Some(ERASED));
    }

    #[test]
    fn a_plaintext_registration_written_before_sealing_opens_as_it_is() {
        let mut payload = registered();
        open_payload(None, ANN, &mut payload).unwrap();
        assert_eq!(payload, registered());
        assert!(erase_plaintext(
            &mut payload,
            personal_fields("account", "AccountRegistered")
        ));
        assert_eq!(payload["data"]["email"], ERASED);
        assert_eq!(payload["data"]["role"], "customer");
    }

    #[test]
    fn a_name_that_looks_sealed_is_sealed_too_and_a_plaintext_one_from_before_loads() {
        let key = DataKey::generate();
        let mut payload = registered();
        payload["data"]["name"] = json!("pd1:AAAA");
        let typed = payload.clone();
        seal_payload(&key, ANN, &mut payload, domain::account::PERSONAL_FIELDS);
        assert_ne!(payload["data"]["name"], "pd1:AAAA");
        open_payload(Some(&key), ANN, &mut payload).unwrap();
        assert_eq!(payload, typed);
        let mut before = typed.clone();
        open_payload(None, ANN, &mut before).unwrap();
        assert_eq!(before, typed, "not a sealed value: left as stored");
    }

    #[test]
    fn only_registrations_carry_personal_fields() {
        assert_eq!(
            personal_fields("account", "AccountRegistered"),
            &["email", "name", "password_hash"]
        );
        assert!(personal_fields("account", "AccountErased").is_empty());
        assert!(personal_fields("wallet", "FundsDeposited").is_empty());
    }
}
