//! Aggregates' states kept in memory by the command bus, so a command reads only the events
//! appended since its aggregate's last load or commit.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use lru::LruCache;

use crate::temporal::Versioned;

/// Aggregates kept by [`States`].
const STATES_KEPT: usize = 10_000;

/// Aggregates' states at the version they were last loaded or committed at, least recently
/// used dropped first. A state at a version never changes (the log is append-only), so a
/// command starts from its aggregate's kept state and reads only the events appended since
/// (by any process): usually one indexed query answering no rows, instead of a snapshot read
/// plus a fold of up to `snapshot_every` events.
#[derive(Clone)]
pub(crate) struct States(Arc<Mutex<LruCache<(&'static str, String), Kept>>>);

struct Kept {
    version: u64,
    last_recorded_at: Option<DateTime<Utc>>,
    state: Box<dyn Any + Send + Sync>,
}

impl States {
    pub(crate) fn new() -> Self {
        let size = NonZeroUsize::new(STATES_KEPT).expect("STATES_KEPT is not zero");
        Self(Arc::new(Mutex::new(LruCache::new(size))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<(&'static str, String), Kept>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get<A: Aggregate + Clone + 'static>(&self, id: &str) -> Option<Versioned<A>> {
        let mut states = self.lock();
        let kept = states.get(&(A::TYPE, id.to_owned()))?;
        Some(Versioned {
            state: kept.state.downcast_ref::<A>()?.clone(),
            version: kept.version,
            last_recorded_at: kept.last_recorded_at,
        })
    }

    pub(crate) fn keep<A: Aggregate + 'static>(&self, id: &str, versioned: Versioned<A>) {
        let kept = Kept {
            version: versioned.version,
            last_recorded_at: versioned.last_recorded_at,
            state: Box::new(versioned.state),
        };
        self.lock().put((A::TYPE, id.to_owned()), kept);
    }
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States")
            .field("kept", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::product::Product;
    use domain::wallet::Wallet;

    #[test]
    fn a_kept_state_comes_back_at_its_version_for_its_aggregate_type_only() {
        let states = States::new();
        assert!(states.get::<Wallet>("x").is_none());
        let at = Utc::now();
        states.keep(
            "x",
            Versioned {
                state: Wallet::default(),
                version: 2,
                last_recorded_at: Some(at),
            },
        );
        let kept = states.get::<Wallet>("x").expect("kept");
        assert_eq!((kept.version, kept.last_recorded_at), (2, Some(at)));
        assert!(states.get::<Product>("x").is_none());
        assert!(states.get::<Wallet>("y").is_none());
    }
}
