//! The `secrets` table: values generated once per database and shared by every process on it —
//! the token signing key when none is configured, the idempotency fingerprint key, the e-mail
//! index key. The only module that names the table.

use chrono::Utc;

use crate::sql::{Executor, Sql};

/// The secret `name`: the stored value, or `fresh`, stored first when there is none
/// (insert-if-absent, then read: every process on the database ends up with the same value).
/// Also says whether this call stored it.
pub async fn get_or_insert<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
    fresh: String,
) -> Result<(String, bool), sqlx::Error> {
    let mut on = on.into();
    let created = Sql::new(
        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .arg(name)
    .arg(fresh)
    .arg(Utc::now())
    .execute(on.reborrow())
    .await?;
    let (value,): (String,) = Sql::new("SELECT value FROM secrets WHERE name = $1")
        .arg(name)
        .fetch_one(on)
        .await?;
    Ok((value, created == 1))
}

/// The secret `name`, if one is stored.
pub async fn get<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
) -> Result<Option<String>, sqlx::Error> {
    Ok(Sql::new("SELECT value FROM secrets WHERE name = $1")
        .arg(name)
        .fetch_optional::<(String,)>(on)
        .await?
        .map(|(value,)| value))
}
