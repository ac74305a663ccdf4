//! What every handler shares: settings, the store, the use cases (the application layer over the
//! command bus), the authenticator (token keys and policy cache), password hashing, the login
//! limits, the idempotency fingerprint key and the metrics.

use std::sync::Arc;

use access::{Authenticator, LoginLimits, Passwords, PolicyCache, Tokens};
use domain::account::AccountServices;
use domain::Currency;
use eventstore_config::{CommandBus, Settings, Store};

use crate::metrics::Metrics;

/// The shared state (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: Settings,
    store: Store,
    app: application::App,
    authenticator: Authenticator,
    login_limits: LoginLimits,
    metrics: Arc<Metrics>,
    fingerprint_key: Secret,
    in_flight: KeysInFlight,
}

/// The `(Idempotency-Key, caller)` pairs whose requests are running in this app.
pub type KeysInFlight = Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>;

/// Key bytes that never show in `Debug` output.
struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl AppState {
    /// State over `store`, with the signing key loaded (or generated) as `settings` say.
    pub async fn new(settings: Settings, store: Store) -> anyhow::Result<Self> {
        let default_currency = Currency::parse(&settings.default_currency).map_err(|e| {
            anyhow::anyhow!(
                "invalid setting default_currency {:?}: {e}",
                settings.default_currency
            )
        })?;
        let authenticator = Authenticator::load(&settings, &store).await?;
        let app = application::App::new(
            CommandBus::new(store.clone(), &settings),
            Passwords::from_settings(&settings),
            authenticator.tokens().clone(),
            authenticator.cache().clone(),
            default_currency,
        );
        let fingerprint_key = fingerprint_key(&settings, &store).await?;
        Ok(Self(Arc::new(Inner {
            app,
            login_limits: LoginLimits::from_settings(&settings),
            metrics: Arc::new(Metrics::new()),
            authenticator,
            fingerprint_key: Secret(fingerprint_key),
            in_flight: KeysInFlight::default(),
            settings,
            store,
        })))
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The use cases.
    pub fn app(&self) -> &application::App {
        &self.0.app
    }

    /// The command bus.
    pub fn bus(&self) -> &CommandBus {
        self.0.app.bus()
    }

    /// The authenticator (shared with the GraphQL API when both are served by one process).
    pub fn authenticator(&self) -> &Authenticator {
        &self.0.authenticator
    }

    /// Token signing and checking.
    pub fn tokens(&self) -> &Tokens {
        self.0.authenticator.tokens()
    }

    /// The policy cache.
    pub fn cache(&self) -> &Arc<PolicyCache> {
        self.0.authenticator.cache()
    }

    /// Password hashing, at most a bounded number at once.
    pub fn passwords(&self) -> &Passwords {
        self.0.app.passwords()
    }

    /// The login rate limits.
    pub fn login_limits(&self) -> &LoginLimits {
        &self.0.login_limits
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// The account aggregate's services (the e-mail registry).
    pub fn accounts(&self) -> &AccountServices {
        self.0.app.accounts()
    }

    /// Currency of wallets opened at registration.
    pub fn default_currency(&self) -> Currency {
        self.0.app.default_currency()
    }

    /// The idempotent requests running in this app.
    pub fn keys_in_flight(&self) -> &KeysInFlight {
        &self.0.in_flight
    }

    /// The key of idempotency fingerprints.
    pub fn fingerprint_key(&self) -> &[u8] {
        &self.0.fingerprint_key.0
    }
}

/// The `secrets` row of the idempotency fingerprint key when no `jwt_secret` is configured.
const FINGERPRINT_SECRET: &str = "idempotency_fingerprint_key";

/// The key of request fingerprints: the configured `jwt_secret`, else a secret generated once
/// per database (in `secrets`).
async fn fingerprint_key(settings: &Settings, store: &Store) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = settings.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        return Ok(secret.as_bytes().to_vec());
    }
    let candidate: [u8; 32] = rand::random();
    let (value, _) = eventstore_config::secrets::get_or_insert(
        store,
        FINGERPRINT_SECRET,
        hex::encode(candidate),
    )
    .await?;
    Ok(value.into_bytes())
}
