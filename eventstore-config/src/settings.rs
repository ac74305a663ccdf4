//! Settings: defaults, then `eventshop.toml` (or the file named by `EVENTSHOP_CONFIG`), then
//! `EVENTSHOP_*` environment variables; `DATABASE_URL` wins over all of them.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The SQLite database used when no `DATABASE_URL` is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/eventshop.db";

/// The keys `EVENTSHOP_*` variables may set; other `EVENTSHOP_*` variables (the admin password,
/// the config path) are not settings.
const SETTING_KEYS: &[&str] = &[
    "database_url",
    "bind",
    "max_connections",
    "connect_timeout_secs",
    "command_retries",
    "snapshot_every",
    "default_currency",
    "jwt_secret",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "max_body_bytes",
    "payment_timeout_secs",
    "header_read_timeout_secs",
    "request_body_timeout_secs",
    "max_http_connections",
    "login_attempts_per_account_per_minute",
    "login_attempts_per_address_per_minute",
    "password_hash_concurrency",
    "password_hash_wait_ms",
    // The NATS JetStream relay.
    "nats_url",
    "nats_stream",
    "nats_duplicate_window_secs",
    // Housekeeping.
    "idempotency_key_ttl_secs",
    "housekeeping_interval_secs",
    // Segments of the log followers.
    "segments",
    "segments_of",
];

/// Everything a process of eventshop can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `postgres://…` or `sqlite://…`; the scheme picks the store.
    pub database_url: String,
    /// Address `serve` listens on.
    pub bind: String,
    /// Largest number of connections in the database pool.
    pub max_connections: u32,
    /// Seconds to wait for a database connection before giving up.
    pub connect_timeout_secs: u64,
    /// How many times the command bus reloads and re-handles a command whose append lost an
    /// optimistic-concurrency race before it reports the conflict.
    pub command_retries: u32,
    /// The command bus writes a snapshot of an aggregate every this many versions (0: never).
    pub snapshot_every: u64,
    /// Currency of the wallet opened at registration (ISO 4217).
    pub default_currency: String,
    /// HS256 signing key of the API's JWTs. When unset, a random key is generated on first use
    /// and kept in the database's `secrets` table (shared by every process on that database).
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Largest request body the REST API accepts, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Seconds an order may wait for its payment before the saga cancels it.
    pub payment_timeout_secs: u64,
    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// or, on a kept-alive connection, from the end of the previous response (so it is also
    /// the idle timeout); then the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body (slower: 408).
    pub request_body_timeout_secs: u64,
    /// Most HTTP connections served at once; more wait in the listen queue. Also kept below
    /// the process's open-file limit.
    pub max_http_connections: usize,
    /// Login attempts (right or wrong) allowed per account (e-mail) a minute, all at once or
    /// spread out; beyond: 429 with `Retry-After` (0: no limit).
    pub login_attempts_per_account_per_minute: u32,
    /// Login attempts allowed per client address a minute; beyond: 429 (0: no limit).
    pub login_attempts_per_address_per_minute: u32,
    /// Password hashes (logins, registrations) computed at once (0: half the cores, at least 1).
    pub password_hash_concurrency: u32,
    /// Milliseconds a request waits for a password-hashing slot before a 503 with `Retry-After`.
    pub password_hash_wait_ms: u64,
    /// NATS server the relay publishes every event to (`nats://host:4222`); unset: no relay.
    pub nats_url: Option<String>,
    /// The JetStream stream the relay publishes to (created if missing).
    pub nats_stream: String,
    /// The stream's duplicate window in seconds, used when the relay creates it: a republished
    /// event (same `Nats-Msg-Id`) within the window is dropped by the server.
    pub nats_duplicate_window_secs: u64,
    /// Seconds an `Idempotency-Key` record is kept; older ones are swept and the key may be used
    /// again as new.
    pub idempotency_key_ttl_secs: u64,
    /// Seconds between housekeeping sweeps (expired idempotency keys, superseded snapshots) in
    /// `serve` and `command-api` (0: no sweeps).
    pub housekeeping_interval_secs: u64,
    /// Segments every log follower (each projection, the order saga, the relay) is split into
    /// (see `eventstore_config::segments`); 1: one worker applies it all.
    pub segments: u32,
    /// Per-follower overrides of [`segments`](Self::segments), by follower name (`orders`,
    /// `saga:orders`, `relay:nats`, …): TOML `[segments_of]`, or
    /// `EVENTSHOP_SEGMENTS_OF='{orders=4,audit=1}'`.
    pub segments_of: std::collections::BTreeMap<String, u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_string(),
            bind: "127.0.0.1:8080".to_string(),
            max_connections: 16,
            connect_timeout_secs: 5,
            command_retries: 20,
            snapshot_every: 100,
            default_currency: "EUR".to_string(),
            jwt_secret: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            max_body_bytes: 64 * 1024,
            payment_timeout_secs: 900,
            header_read_timeout_secs: 10,
            request_body_timeout_secs: 30,
            max_http_connections: 1024,
            login_attempts_per_account_per_minute: 10,
            login_attempts_per_address_per_minute: 60,
            password_hash_concurrency: 0,
            password_hash_wait_ms: 5_000,
            nats_url: None,
            nats_stream: "EVENTSHOP".to_string(),
            nats_duplicate_window_secs: 600,
            idempotency_key_ttl_secs: 24 * 3600,
            housekeeping_interval_secs: 300,
            segments: 1,
            segments_of: std::collections::BTreeMap::new(),
        }
    }
}

/// A settings source could not be read or held a value of the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0}")]
pub struct SettingsError(#[from] Box<figment::Error>);

impl Settings {
    /// How many segments follower `name` is split into (its override, else
    /// [`segments`](Self::segments); at least 1).
    pub fn segments_for(&self, name: &str) -> u32 {
        self.segments_of
            .get(name)
            .copied()
            .unwrap_or(self.segments)
            .max(1)
    }

    /// Loads the settings from the default file (`EVENTSHOP_CONFIG` or `./eventshop.toml`, if it
    /// exists) and the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        let file = std::env::var_os("EVENTSHOP_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("eventshop.toml"));
        Self::figment(Some(file))
            .extract()
            .map_err(|e| SettingsError(Box::new(e)))
    }

    /// The layered configuration: defaults < file < `EVENTSHOP_*` < `DATABASE_URL`.
    pub fn figment(file: Option<PathBuf>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::prefixed("EVENTSHOP_").only(SETTING_KEYS))
            .merge(Env::raw().only(&["database_url"]))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by design
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn database_url_wins_over_the_file_and_the_prefixed_variable() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "eventshop.toml",
                "database_url = \"sqlite://file.db\"\nsnapshot_every = 7",
            )?;
            jail.set_env("EVENTSHOP_DATABASE_URL", "sqlite://env.db");
            jail.set_env("DATABASE_URL", "postgres://postgres@127.0.0.1/x");
            let settings: Settings = Settings::figment(Some("eventshop.toml".into())).extract()?;
            assert_eq!(settings.database_url, "postgres://postgres@127.0.0.1/x");
            assert_eq!(settings.snapshot_every, 7);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_an_error() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("eventshop.toml", "databse_url = \"sqlite://x.db\"")?;
            let result: Result<Settings, _> =
                Settings::figment(Some("eventshop.toml".into())).extract();
            assert!(result.is_err());
            Ok(())
        });
    }

    #[test]
    fn given_eventshop_nats_variables_when_loaded_then_the_relay_settings_follow_them() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let defaults: Settings = Settings::figment(None).extract()?;
            assert_eq!(defaults.nats_url, None);
            assert_eq!(defaults.nats_stream, "EVENTSHOP");
            jail.set_env("EVENTSHOP_NATS_URL", "nats://127.0.0.1:4222");
            jail.set_env("EVENTSHOP_NATS_STREAM", "SHOP");
            jail.set_env("EVENTSHOP_NATS_DUPLICATE_WINDOW_SECS", "60");
            let settings: Settings = Settings::figment(None).extract()?;
            assert_eq!(settings.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
            assert_eq!(settings.nats_stream, "SHOP");
            assert_eq!(settings.nats_duplicate_window_secs, 60);
            Ok(())
        });
    }
    #[test]
    fn given_eventshop_housekeeping_variables_when_loaded_then_they_replace_the_24_hour_default() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let defaults: Settings = Settings::figment(None).extract()?;
            assert_eq!(defaults.idempotency_key_ttl_secs, 86_400);
            assert_eq!(defaults.housekeeping_interval_secs, 300);
            jail.set_env("EVENTSHOP_IDEMPOTENCY_KEY_TTL_SECS", "3600");
            jail.set_env("EVENTSHOP_HOUSEKEEPING_INTERVAL_SECS", "0");
            let settings: Settings = Settings::figment(None).extract()?;
            assert_eq!(settings.idempotency_key_ttl_secs, 3600);
            assert_eq!(settings.housekeeping_interval_secs, 0);
            Ok(())
        });
    }

    #[test]
    fn given_segment_variables_when_loaded_then_each_follower_gets_its_count() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let defaults: Settings = Settings::figment(None).extract()?;
            assert_eq!(defaults.segments_for("orders"), 1);
            jail.set_env("EVENTSHOP_SEGMENTS", "4");
            jail.set_env("EVENTSHOP_SEGMENTS_OF", "{audit=1,\"saga:orders\"=6}");
            let settings: Settings = Settings::figment(None).extract()?;
            assert_eq!(settings.segments_for("orders"), 4);
            assert_eq!(settings.segments_for("audit"), 1);
            assert_eq!(settings.segments_for("saga:orders"), 6);
            Ok(())
        });
    }
}
