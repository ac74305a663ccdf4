//! Ownership of a named job (a projection, the saga, the deadline worker, the relay) by one
//! worker at a time, written once for all of them: [`Lease::wait`] acquires (retrying),
//! [`Lease::keep`] renews when due, [`Lease::release`] gives the job up.
//!
//! PostgreSQL: a session advisory lock held on a dedicated connection (freed by the server when
//! the process dies), or — for the segments of [`crate::segments`] — on ONE [`LockSession`]
//! per process that holds the locks of all its segments (a lost session loses them all; a
//! ping that takes longer than [`PING_TIMEOUT`] counts as lost, so a host cut off from the
//! network stops within seconds, while the server frees its locks once its TCP keepalives
//! find the connection dead). SQLite: a lease (owner, expires_at) in `projection_status`, renewed every
//! second and taken over once it has expired ([`LEASE_TTL`]). Safety does not rest on the lease
//! alone: every batch compares and sets the checkpoint under a row lock, so even two writers
//! could not apply an event twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use eventstore_config::{Sql, Store};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::watch;

use crate::progress;

/// How long a SQLite lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often a held lease is renewed (and a missing one retried).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// How long a lock session's ping may take before the session counts as lost.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

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
pub struct Lease {
    /// The job's name.
    name: String,
    /// This worker.
    owner: String,
    /// When it was last renewed (or acquired).
    renewed: Instant,
    /// What holds it.
    hold: Hold,
}

/// What holds a lease on each store.
enum Hold {
    /// The session holding the advisory lock.
    Postgres(PgConnection),
    /// The lease row (renewed by time).
    Sqlite,
    /// An advisory lock held on the process's shared session, as of its `generation`.
    Shared(Arc<LockSession>, u64),
}

/// One PostgreSQL session holding many advisory locks of one process (its segments' leases).
pub struct LockSession {
    options: PgConnectOptions,
    state: tokio::sync::Mutex<SessionState>,
}

struct SessionState {
    conn: Option<PgConnection>,
    /// Bumped on every new connection: locks of an older generation are gone.
    generation: u64,
    /// When the connection last answered.
    alive: Instant,
}

impl LockSession {
    /// A session for `store` (PostgreSQL; `None` on SQLite, whose leases are rows).
    pub fn for_store(store: &Store, owner: &str) -> Option<Arc<LockSession>> {
        match store {
            Store::Postgres(pool) => {
                let options: PgConnectOptions = pool.connect_options().as_ref().clone();
                let options = options.application_name(&format!("eventshop locks {owner}"));
                Some(Arc::new(LockSession {
                    options,
                    state: tokio::sync::Mutex::new(SessionState {
                        conn: None,
                        generation: 0,
                        alive: Instant::now(),
                    }),
                }))
            }
            Store::Sqlite(_) => None,
        }
    }

    /// Tries the advisory lock of `name`; the generation it was taken in.
    async fn try_lock(&self, name: &str) -> Result<Option<u64>, sqlx::Error> {
        let mut state = self.state.lock().await;
        if state.conn.is_none() {
            let conn = tokio::time::timeout(PING_TIMEOUT * 2, self.options.connect())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            state.conn = Some(conn);
            state.generation += 1;
            state.alive = Instant::now();
        }
        let generation = state.generation;
        let Some(conn) = state.conn.as_mut() else {
            return Ok(None);
        };
        let query = Sql::new("SELECT pg_try_advisory_lock($1::int4, $2::int4)")
            .arg(ADVISORY_CLASS)
            .arg(advisory_key(name));
        let result = tokio::time::timeout(PING_TIMEOUT, query.fetch_one::<(bool,)>(&mut *conn))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
            .and_then(|r| r);
        match result {
            Ok((true,)) => {
                state.alive = Instant::now();
                Ok(Some(generation))
            }
            Ok((false,)) => Ok(None),
            Err(error) => {
                state.conn = None;
                Err(error)
            }
        }
    }

    /// Whether the locks of `generation` are still held (pings at most every 500 ms).
    async fn holds(&self, generation: u64) -> bool {
        let mut state = self.state.lock().await;
        if state.generation != generation || state.conn.is_none() {
            return false;
        }
        if state.alive.elapsed() < Duration::from_millis(500) {
            return true;
        }
        let Some(conn) = state.conn.as_mut() else {
            return false;
        };
        match tokio::time::timeout(PING_TIMEOUT, conn.ping()).await {
            Ok(Ok(())) => {
                state.alive = Instant::now();
                true
            }
            _ => {
                state.conn = None;
                false
            }
        }
    }

    /// Releases the advisory lock of `name` taken in `generation`.
    async fn unlock(&self, name: &str, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation != generation {
            return;
        }
        let Some(conn) = state.conn.as_mut() else {
            return;
        };
        let query = Sql::new("SELECT pg_advisory_unlock($1::int4, $2::int4)")
            .arg(ADVISORY_CLASS)
            .arg(advisory_key(name));
        let result =
            tokio::time::timeout(PING_TIMEOUT, query.fetch_one::<(bool,)>(&mut *conn)).await;
        if !matches!(result, Ok(Ok(_))) {
            state.conn = None;
        }
    }

    /// Closes the session (every lock it holds is released).
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        if let Some(conn) = state.conn.take() {
            conn.close().await.ok();
        }
    }
}

/// Tries to become the owner of job `name` through `session` (PostgreSQL) or the lease row
/// (SQLite, `session` is `None`). `Ok(None)`: another worker owns it.
pub async fn try_acquire_in(
    session: Option<&Arc<LockSession>>,
    store: &Store,
    name: &str,
    owner: &str,
) -> Result<Option<Lease>, sqlx::Error> {
    let Some(session) = session else {
        return try_acquire(store, name, owner).await;
    };
    let Some(generation) = session.try_lock(name).await? else {
        return Ok(None);
    };
    if let Err(error) = progress::record_owner(store, name, owner, Utc::now()).await {
        session.unlock(name, generation).await;
        return Err(error);
    }
    Ok(Some(Lease {
        name: name.to_string(),
        owner: owner.to_string(),
        renewed: Instant::now(),
        hold: Hold::Shared(session.clone(), generation),
    }))
}

/// Tries to become the owner of job `name`. `Ok(None)`: another worker owns it.
pub async fn try_acquire(
    store: &Store,
    name: &str,
    owner: &str,
) -> Result<Option<Lease>, sqlx::Error> {
    let now = Utc::now();
    let hold = match store {
        Store::Postgres(pool) => {
            let options: PgConnectOptions = pool.connect_options().as_ref().clone();
            let options = options.application_name(&format!("eventshop lease {name}"));
            let mut conn = options.connect().await?;
            let (got,): (bool,) = Sql::new("SELECT pg_try_advisory_lock($1::int4, $2::int4)")
                .arg(ADVISORY_CLASS)
                .arg(advisory_key(name))
                .fetch_one(&mut conn)
                .await?;
            if !got {
                conn.close().await.ok();
                return Ok(None);
            }
            progress::record_owner(store, name, owner, now).await?;
            Hold::Postgres(conn)
        }
        Store::Sqlite(_) => {
            if !progress::take_lease(store, name, owner, now, expires_after(now)).await? {
                return Ok(None);
            }
            Hold::Sqlite
        }
    };
    Ok(Some(Lease {
        name: name.to_string(),
        owner: owner.to_string(),
        renewed: Instant::now(),
        hold,
    }))
}

fn expires_after(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default()
}

impl Lease {
    /// Waits until this worker owns job `name` (trying every [`RENEW_EVERY`]); `None` once
    /// `shutdown` is set.
    pub async fn wait(
        store: &Store,
        name: &str,
        owner: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Lease> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            match try_acquire(store, name, owner).await {
                Ok(Some(lease)) => {
                    tracing::info!(job = name, owner, "lease acquired");
                    return Some(lease);
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(job = name, %error, "lease attempt failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renews the lease if [`RENEW_EVERY`] has passed since the last renewal; `false` if it
    /// was lost (connection gone, taken over, or the renewal failed).
    pub async fn keep(&mut self, store: &Store) -> bool {
        if self.renewed.elapsed() < RENEW_EVERY {
            return true;
        }
        let kept = self.renew(store).await.unwrap_or(false);
        if !kept {
            tracing::warn!(job = %self.name, "lease lost");
        }
        kept
    }

    /// How long until the next renewal is due (zero: now).
    pub fn renew_in(&self) -> Duration {
        RENEW_EVERY.saturating_sub(self.renewed.elapsed())
    }

    /// Renews the lease now; `Ok(false)` if it was lost (connection gone, or taken over).
    pub async fn renew(&mut self, store: &Store) -> Result<bool, sqlx::Error> {
        let kept = match &mut self.hold {
            Hold::Postgres(conn) => conn.ping().await.is_ok(),
            Hold::Shared(session, generation) => session.holds(*generation).await,
            Hold::Sqlite => {
                progress::extend_lease(store, &self.name, &self.owner, expires_after(Utc::now()))
                    .await?
            }
        };
        if kept {
            self.renewed = Instant::now();
        }
        Ok(kept)
    }

    /// Gives the job up.
    pub async fn release(self, store: &Store) {
        let _ = progress::clear_owner(store, &self.name, &self.owner).await;
        match self.hold {
            Hold::Postgres(conn) => {
                conn.close().await.ok();
            }
            Hold::Shared(session, generation) => session.unlock(&self.name, generation).await,
            Hold::Sqlite => {}
        }
    }
}

/// Whether some worker currently owns job `name`.
pub async fn is_held(store: &Store, name: &str) -> Result<bool, sqlx::Error> {
    match store {
        Store::Postgres(_) => {
            let (held,): (bool,) = Sql::new(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2)",
            )
            .arg(i64::from(ADVISORY_CLASS))
            .arg(i64::from(advisory_key(name)))
            .fetch_one(store)
            .await?;
            Ok(held)
        }
        Store::Sqlite(_) => progress::lease_alive(store, name, Utc::now()).await,
    }
}

/// A name for this worker process: `pid<pid>-<random>`.
pub fn owner_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("pid{}-{}", std::process::id(), &random[..8])
}
