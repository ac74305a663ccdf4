//! Aggregates' states kept in memory by the command bus, so a command decides on its
//! aggregate's last loaded or committed state without reading the log first. The append with
//! the expected version proves the state current (the unique (aggregate_type, aggregate_id,
//! sequence) key refuses it otherwise); a state whose append lost is marked stale, and the
//! next load reads the events appended since.

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
/// command decides on its aggregate's kept state at once (no read), and only a state marked
/// [`stale`](Self::stale) (its append conflicted: another writer, perhaps another process,
/// appended since) is caught up first with the events since: one indexed query instead of a
/// snapshot read plus a fold of up to `snapshot_every` events.
#[derive(Clone)]
pub(crate) struct States(Arc<Mutex<LruCache<(&'static str, String), Kept>>>);

struct Kept {
    version: u64,
    /// An append from this state conflicted: newer events exist.
    stale: bool,
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

    /// The kept state of aggregate `id`, and whether it is known to be stale.
    pub(crate) fn get<A: Aggregate + Clone + 'static>(
        &self,
        id: &str,
    ) -> Option<(Versioned<A>, bool)> {
        let mut states = self.lock();
        let kept = states.get(&(A::TYPE, id.to_owned()))?;
        Some((
            Versioned {
                state: kept.state.downcast_ref::<A>()?.clone(),
                version: kept.version,
                last_recorded_at: kept.last_recorded_at,
            },
            kept.stale,
        ))
    }

    /// Keeps `versioned` as aggregate `id`'s state, unless a newer version is kept already (a
    /// slower request finishing late does not take the cache back).
    pub(crate) fn keep<A: Aggregate + 'static>(&self, id: &str, versioned: Versioned<A>) {
        let mut states = self.lock();
        let key = (A::TYPE, id.to_owned());
        if let Some(kept) = states.get(&key) {
            if kept.version > versioned.version {
                return;
            }
        }
        let kept = Kept {
            version: versioned.version,
            stale: false,
            last_recorded_at: versioned.last_recorded_at,
            state: Box::new(versioned.state),
        };
        states.put(key, kept);
    }

    /// Marks aggregate `id`'s kept state stale (an append from it conflicted): the next load
    /// catches it up before deciding.
    pub(crate) fn stale(&self, aggregate_type: &'static str, id: &str) {
        if let Some(kept) = self.lock().get_mut(&(aggregate_type, id.to_owned())) {
            kept.stale = true;
        }
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
        let (kept, stale) = states.get::<Wallet>("x").expect("kept");
        assert_eq!(
            (kept.version, kept.last_recorded_at, stale),
            (2, Some(at), false)
        );
        assert!(states.get::<Product>("x").is_none());
        assert!(states.get::<Wallet>("y").is_none());
    }

    fn at_version(version: u64) -> Versioned<Wallet> {
        Versioned {
            state: Wallet::default(),
            version,
            last_recorded_at: None,
        }
    }

    #[test]
    fn a_state_marked_stale_stays_stale_until_a_newer_or_equal_version_is_kept() {
        let states = States::new();
        states.keep("x", at_version(3));
        states.stale(Wallet::TYPE, "x");
        assert!(states.get::<Wallet>("x").expect("kept").1);
        states.keep("x", at_version(2));
        let (kept, stale) = states.get::<Wallet>("x").expect("kept");
        assert_eq!(
            (kept.version, stale),
            (3, true),
            "an older version is not kept"
        );
        states.keep("x", at_version(5));
        let (kept, stale) = states.get::<Wallet>("x").expect("kept");
        assert_eq!((kept.version, stale), (5, false));
    }
}
