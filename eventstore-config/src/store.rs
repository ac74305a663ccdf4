//! Store selection and connection: one handle over either PostgreSQL or SQLite, with migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

use crate::settings::Settings;

/// A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
pub const CHECK_CONNECTIONS_IDLE_FOR: Duration = Duration::from_secs(1);

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Why a store could not be opened or prepared. Each message is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `DATABASE_URL` names a scheme eventshop has no store for.
    #[error("unsupported database URL scheme '{0}': use postgres://… or sqlite://…")]
    UnsupportedScheme(String),
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database did not answer.
    #[error("cannot connect to the {kind} database at {url}")]
    Connect {
        /// Which store.
        kind: &'static str,
        /// The URL without its password.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The folder of the SQLite file could not be created.
    #[error("cannot create the folder {path} for the SQLite database")]
    CreateDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A migration failed.
    #[error("migrating the {kind} database failed")]
    Migrate {
        /// Which store.
        kind: &'static str,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
}

/// Which event store a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// PostgreSQL through postgres-es.
    Postgres,
    /// SQLite through sqlite-es.
    Sqlite,
}

impl StoreKind {
    /// Picks the store by the URL's scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "sqlite" => Ok(Self::Sqlite),
            _ => Err(StoreError::UnsupportedScheme(scheme.to_string())),
        }
    }
}

impl Settings {
    /// The store kind `database_url` selects.
    pub fn store_kind(&self) -> Result<StoreKind, StoreError> {
        StoreKind::from_url(&self.database_url)
    }
}

/// A connected event store: the pool of the selected database.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL (production).
    Postgres(PgPool),
    /// SQLite (embedded default).
    Sqlite(SqlitePool),
}

impl Store {
    /// Connects to the database `settings.database_url` names (creating a SQLite file and its
    /// folder as needed). Does not migrate.
    #[tracing::instrument(skip_all, fields(url = %redact(&settings.database_url)))]
    pub async fn connect(settings: &Settings) -> Result<Self, StoreError> {
        let url = settings.database_url.as_str();
        let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
        match StoreKind::from_url(url)? {
            StoreKind::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
                let options = postgres_options(url, options);
                let connect_error = |source| StoreError::Connect {
                    kind: "PostgreSQL",
                    url: redact(url),
                    source,
                };
                // One direct attempt first: a pool only reports "timed out", this says why.
                let probe = tokio::time::timeout(timeout, PgConnection::connect_with(&options))
                    .await
                    .map_err(|_| connect_error(sqlx::Error::PoolTimedOut))?
                    .map_err(connect_error)?;
                probe.close().await.ok();
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections.max(1))
                    .acquire_timeout(timeout)
                    // sqlx pings every connection it hands out: a round trip per statement.
                    // Like HikariCP, check only connections that sat idle (a server restart
                    // or an idle-session timeout shows there); a connection that fails the
                    // check is closed and the pool hands out another.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= CHECK_CONNECTIONS_IDLE_FOR {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Self::Postgres(pool))
            }
            StoreKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
                if let Some(dir) = options.get_filename().parent() {
                    if !dir.as_os_str().is_empty() && !is_memory(url) {
                        create_dir(dir)?;
                    }
                }
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections.clamp(1, 8))
                    .acquire_timeout(Duration::from_secs(30))
                    // An open database file does not go away: no ping (a round trip to the
                    // connection's worker thread) before each statement.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect {
                        kind: "SQLite",
                        url: redact(url),
                        source,
                    })?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Connects and applies every pending migration.
    pub async fn open(settings: &Settings) -> Result<Self, StoreError> {
        let store = Self::connect(settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Creates the PostgreSQL database `settings.database_url` names if it does not exist yet
    /// (SQLite files are created on connect). Returns whether it created one.
    pub async fn create_database_if_missing(settings: &Settings) -> Result<bool, StoreError> {
        let url = settings.database_url.as_str();
        if StoreKind::from_url(url)? != StoreKind::Postgres {
            return Ok(false);
        }
        let connect_error = |source| StoreError::Connect {
            kind: "PostgreSQL",
            url: redact(url),
            source,
        };
        if sqlx::Postgres::database_exists(url)
            .await
            .map_err(connect_error)?
        {
            return Ok(false);
        }
        sqlx::Postgres::create_database(url)
            .await
            .map_err(connect_error)?;
        Ok(true)
    }

    /// Applies every pending migration (idempotent; concurrent callers are serialized by the
    /// migrator's lock).
    #[tracing::instrument(skip(self), fields(store = self.kind_name()))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let kind = self.kind_name();
        match self {
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
        }
        .map_err(|source| StoreError::Migrate { kind, source })
    }

    /// Which store this is.
    pub fn kind(&self) -> StoreKind {
        match self {
            Self::Postgres(_) => StoreKind::Postgres,
            Self::Sqlite(_) => StoreKind::Sqlite,
        }
    }

    /// "PostgreSQL" or "SQLite".
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "PostgreSQL",
            Self::Sqlite(_) => "SQLite",
        }
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        match self {
            Self::Postgres(pool) => pool.options().get_max_connections(),
            Self::Sqlite(pool) => pool.options().get_max_connections(),
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Prepared statements kept per PostgreSQL connection (sqlx's default is 100). Each distinct
/// statement text is prepared once per connection and then only bound and executed; an append
/// of N events is its own text per N, and `serve` runs the projectors' and the saga's
/// statements on the same pool, so the default could evict and prepare again.
pub const STATEMENT_CACHE_CAPACITY: usize = 500;

/// The connection options eventshop sets over the URL's: a larger prepared-statement cache, and
/// TLS as the URL asks. Without `sslmode` in the URL (or `PGSSLMODE`), a loopback host
/// (`localhost`, `127.0.0.1`, `::1`) or a Unix socket connects without TLS (nothing crosses a
/// network, and TLS costs every round trip), and any other host keeps sqlx's `prefer` (TLS when
/// the server offers it).
fn postgres_options(url: &str, options: PgConnectOptions) -> PgConnectOptions {
    let options = options.statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    if asks_for_tls_mode(url) || std::env::var_os("PGSSLMODE").is_some() {
        return options;
    }
    if is_local_host(options.get_host()) {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// Whether the URL's query names `sslmode` (or sqlx's spelling `ssl-mode`).
fn asks_for_tls_mode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|key| key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode"))
    })
}

/// A loopback host or a Unix socket's directory.
fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        path: dir.display().to_string(),
        source,
    })
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by design
mod tests {
    use super::*;
    use crate::settings::DEFAULT_DATABASE_URL;
    use figment::Jail;

    #[test]
    fn with_nothing_configured_the_sqlite_default_is_used() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let settings: Settings = Settings::figment(Some("eventshop.toml".into())).extract()?;
            assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
            assert_eq!(settings.store_kind().unwrap(), StoreKind::Sqlite);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_scheme_is_refused() {
        let err = StoreKind::from_url("mysql://localhost/db").unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedScheme(s) if s == "mysql"));
    }

    #[test]
    fn given_no_sslmode_when_the_host_is_loopback_then_tls_is_off_else_as_the_url_asks() {
        assert!(is_local_host("localhost"));
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("[::1]"));
        assert!(is_local_host("/var/run/postgresql"));
        assert!(!is_local_host("db.example.com"));
        assert!(!is_local_host("10.0.0.5"));
        assert!(asks_for_tls_mode("postgres://h/db?sslmode=require"));
        assert!(asks_for_tls_mode(
            "postgres://h/db?application_name=x&ssl-mode=prefer"
        ));
        assert!(!asks_for_tls_mode(
            "postgres://h/db?application_name=sslmode"
        ));
        assert!(!asks_for_tls_mode("postgres://h/db"));
    }

    #[test]
    fn a_password_in_the_url_is_not_shown() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/shop"),
            "postgres://me:***@db:5432/shop"
        );
        assert_eq!(redact("postgres://me@db/shop"), "postgres://me@db/shop");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
