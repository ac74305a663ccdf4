//! What every handler shares: settings, the store and its command bus, the authenticator (token
//! keys and policy cache), password hashing, the login limits and the metrics.

use std::sync::Arc;

use access::{Authenticator, LoginLimits, Passwords, PolicyCache, Tokens};
use domain::account::AccountServices;
use domain::Currency;
use eventstore_config::{CommandBus, Settings, SqlEmailRegistry, Store};

use crate::metrics::Metrics;

/// The shared state (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: Settings,
    store: Store,
    bus: CommandBus,
    authenticator: Authenticator,
    passwords: Passwords,
    login_limits: LoginLimits,
    metrics: Arc<Metrics>,
    accounts: AccountServices,
    default_currency: Currency,
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
        Ok(Self(Arc::new(Inner {
            bus: CommandBus::new(store.clone(), &settings),
            accounts: AccountServices::new(Arc::new(SqlEmailRegistry::new(store.clone()))),
            passwords: Passwords::from_settings(&settings),
            login_limits: LoginLimits::from_settings(&settings),
            metrics: Arc::new(Metrics::new()),
            authenticator,
            default_currency,
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

    /// The command bus.
    pub fn bus(&self) -> &CommandBus {
        &self.0.bus
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
        &self.0.passwords
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
        &self.0.accounts
    }

    /// Currency of wallets opened at registration.
    pub fn default_currency(&self) -> Currency {
        self.0.default_currency
    }
}
