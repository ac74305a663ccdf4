//! eventshop-tests: the end-to-end and store-contract suites, and the helpers they share. Every
//! test gets its own fresh database: a PostgreSQL database with a random name (on the server of
//! `TEST_DATABASE_URL`, else `DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432`), or its own
//! SQLite file. May depend on every crate of the workspace.
#![forbid(unsafe_code)]

pub mod api;
pub mod big_log;
pub mod browser;
pub mod child;
pub mod graphql;
pub mod nats;
pub mod projections;
pub mod saga;
pub mod subscriptions;

/// Runs each named test (an `async fn(TestStore)`) against PostgreSQL and SQLite, each on a
/// fresh database of its own.
#[macro_export]
macro_rules! store_tests {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::TestStore::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::TestStore::sqlite().await).await;
                }
            )*
        }
    };
}

use std::path::PathBuf;

use std::time::{Duration, Instant};

use eventstore_config::{Checkpoint, Settings, Store, StoredEvent};
use sqlx::Connection;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A freshly migrated store that removes its database when dropped.
pub struct TestStore {
    /// The migrated store.
    pub store: Store,
    /// Settings pointing at it (tests may change retries and snapshots).
    pub settings: Settings,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { server: String, name: String },
    Sqlite { path: PathBuf },
}

/// The URL of the PostgreSQL server's maintenance database used to create test databases.
pub fn postgres_server_url() -> String {
    let url = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    with_database(&url, "postgres")
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestStore {
    /// A new, migrated PostgreSQL database with a random name. Panics (failing the test
    /// loudly) if the server cannot be reached: tests never skip.
    pub async fn postgres() -> Self {
        Self::postgres_with(Settings::default()).await
    }

    /// As [`postgres`](Self::postgres), with these settings (the URL is replaced).
    pub async fn postgres_with(settings: Settings) -> Self {
        Self::postgres_on(&postgres_server_url(), settings).await
    }

    /// As [`postgres_with`](Self::postgres_with), on the server whose maintenance database
    /// `server` names (a test's own PostgreSQL instance).
    pub async fn postgres_on(server: &str, mut settings: Settings) -> Self {
        let server = server.to_string();
        let name = format!("eventshop_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL test server {server} unreachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        settings.database_url = with_database(&server, &name);
        let store = Store::open(&settings)
            .await
            .expect("open the test database");
        Self {
            store,
            settings,
            cleanup: Cleanup::Postgres { server, name },
        }
    }

    /// A new, migrated SQLite file in the temp folder.
    pub async fn sqlite() -> Self {
        Self::sqlite_with(Settings::default()).await
    }

    /// As [`sqlite`](Self::sqlite), with these settings (the URL is replaced).
    pub async fn sqlite_with(mut settings: Settings) -> Self {
        let path = std::env::temp_dir()
            .join("eventshop-tests")
            .join(format!("{}.db", uuid::Uuid::new_v4().simple()));
        settings.database_url = format!("sqlite://{}", path.display());
        let store = Store::open(&settings)
            .await
            .expect("open the test database");
        Self {
            store,
            settings,
            cleanup: Cleanup::Sqlite { path },
        }
    }

    /// The database URL of this store.
    pub fn url(&self) -> &str {
        &self.settings.database_url
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Postgres { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // Drop runs inside the test's runtime: use a separate thread and runtime.
                let handle = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("cleanup runtime");
                    runtime.block_on(async move {
                        if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(&sql).execute(&mut admin).await;
                        }
                    });
                });
                let _ = handle.join();
            }
            Cleanup::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

/// Reads the log from `from` in pages of `page` until at least `count` events arrived (the
/// commit-safe reader holds events back while any older transaction of the cluster, in any
/// database, is still running, so right after a commit they may not be readable yet). Panics
/// after 10 s.
pub async fn read_log(
    store: &Store,
    from: Checkpoint,
    page: u32,
    count: usize,
) -> Vec<StoredEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut checkpoint = from;
    let mut read = Vec::new();
    while read.len() < count {
        let batch = store
            .read_after(checkpoint, page)
            .await
            .expect("read_after");
        assert!(
            batch.len() <= page.max(1) as usize,
            "a page larger than asked for"
        );
        match batch.last() {
            Some(last) => checkpoint = last.checkpoint(),
            None => {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {count} events became readable",
                    read.len()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        read.extend(batch);
    }
    read
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/app?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
