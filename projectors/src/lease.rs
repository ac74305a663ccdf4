//! Ownership of a projection by one worker at a time. PostgreSQL: a session advisory lock held
//! on a dedicated connection (freed by the server when the process dies). SQLite: a lease
//! (owner, expires_at) in `projection_status`, renewed every second and taken over once it has
//! expired ([`LEASE_TTL`]). Safety does not rest on the lease alone: every batch compares and
//! sets the checkpoint under a row lock, so even two writers could not apply an event twice.

use std::time::Duration;

use chrono::Utc;
use eventstore_config::Store;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::sql::sqlite_time;

/// How long a SQLite lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often a held lease is renewed (and a missing one retried).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// The first key of every eventshop projection advisory lock ("ESHP").
pub const ADVISORY_CLASS: i32 = 0x4553_4850;

/// The second advisory-lock key of projection `name` (FNV-1a, non-negative).
pub fn advisory_key(name: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash & 0x7fff_ffff) as i32
}

/// A held lease.
pub enum Lease {
    /// The connection holding the advisory lock.
    Postgres {
        /// Projection name.
        name: String,
        /// This worker.
        owner: String,
        /// The lock's session.
        conn: PgConnection,
    },
    /// The lease row's owner.
    Sqlite {
        /// Projection name.
        name: String,
        /// This worker.
        owner: String,
    },
}

/// Tries to become the owner of projection `name`. `Ok(None)`: another worker owns it.
pub async fn try_acquire(
    store: &Store,
    name: &str,
    owner: &str,
) -> Result<Option<Lease>, sqlx::Error> {
    match store {
        Store::Postgres(pool) => {
            let options: PgConnectOptions = pool.connect_options().as_ref().clone();
            let options = options.application_name(&format!("eventshop lease {name}"));
            let mut conn = options.connect().await?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(ADVISORY_CLASS)
                .bind(advisory_key(name))
                .fetch_one(&mut conn)
                .await?;
            if !got {
                conn.close().await.ok();
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO projection_status (name, owner, updated_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, updated_at = now()",
            )
            .bind(name)
            .bind(owner)
            .execute(pool)
            .await?;
            Ok(Some(Lease::Postgres {
                name: name.to_string(),
                owner: owner.to_string(),
                conn,
            }))
        }
        Store::Sqlite(pool) => {
            let now = Utc::now();
            let expires = now + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default();
            let done = sqlx::query(
                "INSERT INTO projection_status (name, owner, lease_expires_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE \
                 SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at, \
                     updated_at = excluded.updated_at \
                 WHERE projection_status.owner IS NULL OR projection_status.owner = ?2 \
                    OR projection_status.lease_expires_at IS NULL \
                    OR projection_status.lease_expires_at < ?4",
            )
            .bind(name)
            .bind(owner)
            .bind(sqlite_time(expires))
            .bind(sqlite_time(now))
            .execute(pool)
            .await?;
            Ok((done.rows_affected() == 1).then(|| Lease::Sqlite {
                name: name.to_string(),
                owner: owner.to_string(),
            }))
        }
    }
}

impl Lease {
    /// Renews the lease; `Ok(false)` if it was lost (connection gone, or taken over).
    pub async fn renew(&mut self, store: &Store) -> Result<bool, sqlx::Error> {
        match (self, store) {
            (Lease::Postgres { conn, .. }, _) => Ok(conn.ping().await.is_ok()),
            (Lease::Sqlite { name, owner }, Store::Sqlite(pool)) => {
                let expires =
                    Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default();
                let done = sqlx::query(
                    "UPDATE projection_status SET lease_expires_at = ? WHERE name = ? AND owner = ?",
                )
                .bind(sqlite_time(expires))
                .bind(name.as_str())
                .bind(owner.as_str())
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
            (Lease::Sqlite { .. }, Store::Postgres(_)) => Ok(false),
        }
    }

    /// Gives the projection up.
    pub async fn release(self, store: &Store) {
        match (self, store) {
            (Lease::Postgres { name, owner, conn }, Store::Postgres(pool)) => {
                let _ = sqlx::query(
                    "UPDATE projection_status SET owner = NULL WHERE name = $1 AND owner = $2",
                )
                .bind(name)
                .bind(owner)
                .execute(pool)
                .await;
                conn.close().await.ok();
            }
            (Lease::Sqlite { name, owner }, Store::Sqlite(pool)) => {
                let _ = sqlx::query(
                    "UPDATE projection_status SET owner = NULL, lease_expires_at = NULL \
                      WHERE name = ? AND owner = ?",
                )
                .bind(name)
                .bind(owner)
                .execute(pool)
                .await;
            }
            _ => {}
        }
    }
}

/// Whether some worker currently owns projection `name`.
pub async fn is_held(store: &Store, name: &str) -> Result<bool, sqlx::Error> {
    match store {
        Store::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2)",
            )
            .bind(i64::from(ADVISORY_CLASS))
            .bind(i64::from(advisory_key(name)))
            .fetch_one(pool)
            .await
        }
        Store::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM projection_status WHERE name = ? \
                   AND owner IS NOT NULL AND lease_expires_at >= ?)",
            )
            .bind(name)
            .bind(sqlite_time(Utc::now()))
            .fetch_one(pool)
            .await
        }
    }
}

/// A name for this worker process: `pid<pid>-<random>`.
pub fn owner_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("pid{}-{}", std::process::id(), &random[..8])
}
