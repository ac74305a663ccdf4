//! Login rate limits (GCRA, with the `governor` crate): per account — keyed by the e-mail as
//! given, trimmed and lower-cased, whether or not an account has it, so the answer does not tell
//! which e-mails exist — and per client address. Every attempt counts, right or wrong, and is
//! counted before its password is hashed, so a flood costs no hashing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use eventstore_config::Settings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys kept before idle ones are forgotten.
const PRUNE_AT: usize = 10_000;

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Too many attempts at one account.
    Account,
    /// Too many attempts from one address.
    Address,
}

/// An attempt over a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}; retry in {} s", match scope {
    Scope::Account => "too many login attempts for this account",
    Scope::Address => "too many login attempts from this address",
}, retry_after.as_secs())]
pub struct Throttled {
    /// Which limit.
    pub scope: Scope,
    /// Whole seconds until an attempt is allowed again (at least 1).
    pub retry_after: Duration,
}

/// The login limits of one process.
#[derive(Debug)]
pub struct LoginLimits {
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<Option<IpAddr>>>,
}

impl LoginLimits {
    /// At most `per_account` attempts a minute at one account and `per_address` from one
    /// address, each allowed in a burst (0: no limit).
    pub fn new(per_account: u32, per_address: u32) -> Self {
        Self {
            per_account: NonZeroU32::new(per_account)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_address: NonZeroU32::new(per_address)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// As the settings `login_attempts_per_account_per_minute` and
    /// `login_attempts_per_address_per_minute` say.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(
            settings.login_attempts_per_account_per_minute,
            settings.login_attempts_per_address_per_minute,
        )
    }

    /// Counts one login attempt at `email` from `address` (`None`: unknown, which is one key of
    /// its own), or says which limit it is over and for how long.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(limiter) = &self.per_address {
            check(limiter, &address, Scope::Address)?;
        }
        if let Some(limiter) = &self.per_account {
            check(limiter, &email.trim().to_lowercase(), Scope::Account)?;
        }
        Ok(())
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    scope: Scope,
) -> Result<(), Throttled> {
    if limiter.len() >= PRUNE_AT {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Throttled {
            scope,
            retry_after: Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .max(Duration::from_secs(1)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_account_at_its_limit_when_it_is_tried_again_then_it_waits_and_others_do_not() {
        let limits = LoginLimits::new(3, 0);
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            limits.check("ann@example.com", address).unwrap();
        }
        let throttled = limits.check(" ANN@example.com ", address).unwrap_err();
        assert_eq!(throttled.scope, Scope::Account);
        assert!((1..=20).contains(&throttled.retry_after.as_secs()));
        limits.check("bob@example.com", address).unwrap();
    }

    #[test]
    fn given_an_address_at_its_limit_when_it_tries_any_account_then_it_waits() {
        let limits = LoginLimits::new(0, 2);
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        limits.check("a@example.com", address).unwrap();
        limits.check("b@example.com", address).unwrap();
        let throttled = limits.check("c@example.com", address).unwrap_err();
        assert_eq!(throttled.scope, Scope::Address);
        limits
            .check("c@example.com", Some(IpAddr::from([10, 0, 0, 2])))
            .unwrap();
        limits.check("c@example.com", None).unwrap();
    }
}
