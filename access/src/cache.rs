//! The local policy cache: per subject, its `PolicySet` and the version it was folded to, plus
//! what authentication needs of its account — whether it was deleted, and which of its token
//! families were revoked.
//!
//! A subject is loaded from the store on first use (login warms it); a background follower of
//! the global log ([`PolicyCache::follow`]) applies later policy events, `AccountDeleted` and
//! `RefreshTokenFamilyRevoked` in version order, and this process's own commands are applied
//! right after they commit, so a change is visible here at once (and in another process on the
//! same database as soon as its follower reads the event).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::account::{Account, AccountEvent};
use domain::policy_set::{PolicySet, PolicySetEvent};
use eventstore_config::{Checkpoint, Committed, ReadError, Store, StoredEvent};
use uuid::Uuid;

/// One subject as the cache knows it.
#[derive(Debug, Clone)]
struct Entry {
    policies: Arc<PolicySet>,
    version: u64,
    deleted: bool,
    revoked_families: Arc<BTreeSet<Uuid>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// The newest policy-set version the follower has seen per subject (cached or not): a load
    /// older than this raced with the follower and is redone.
    seen: HashMap<String, u64>,
    /// Accounts seen deleted.
    deleted: HashSet<String>,
    /// Token families seen revoked, per account.
    revoked_families: HashMap<String, BTreeSet<Uuid>>,
}

/// The subjects' policies and account status, kept current by the log.
#[derive(Debug, Default)]
pub struct PolicyCache {
    inner: RwLock<Inner>,
}

/// What a subject may do, as of one look at the cache.
#[derive(Debug, Clone)]
pub struct Grants {
    policies: Arc<PolicySet>,
    registered: bool,
    deleted: bool,
    revoked_families: Arc<BTreeSet<Uuid>>,
}

impl Grants {
    /// Whether `subject` (whose grants these are) may `action` `resource_type`/`resource_id`:
    /// never once the account is deleted.
    pub fn allows(
        &self,
        subject: &str,
        action: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> bool {
        !self.deleted
            && self
                .policies
                .allows(subject, action, resource_type, resource_id)
    }

    /// False when no account was ever registered under the subject (a token for it can only be
    /// a forgery with the real key, or a token of another eventshop database).
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// True once the account was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// True when the token family `family` of the account was revoked.
    pub fn is_family_revoked(&self, family: Uuid) -> bool {
        self.revoked_families.contains(&family)
    }

    /// The subject's policies.
    pub fn policies(&self) -> &Arc<PolicySet> {
        &self.policies
    }
}

impl From<&Entry> for Grants {
    fn from(entry: &Entry) -> Self {
        Grants {
            policies: entry.policies.clone(),
            registered: true,
            deleted: entry.deleted,
            revoked_families: entry.revoked_families.clone(),
        }
    }
}

/// The policies of `subject` kept changing while they were being loaded.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading the store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The subject's policies changed under five loads in a row.
    #[error("the policies of {0} kept changing while being loaded")]
    Unstable(String),
}

impl PolicyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subject's grants, loading them from `store` on a miss.
    pub async fn grants(&self, store: &Store, subject: &str) -> Result<Grants, CacheError> {
        if let Some(entry) = self.read().entries.get(subject) {
            return Ok(entry.into());
        }
        self.load(store, subject).await
    }

    /// Loads (or reloads) the subject from the store into the cache.
    #[tracing::instrument(skip(self, store))]
    pub async fn load(&self, store: &Store, subject: &str) -> Result<Grants, CacheError> {
        for _ in 0..5 {
            let policies = store.load_current::<PolicySet>(subject).await?;
            let account = store.load_current::<Account>(subject).await?;
            if !account.state.is_registered() {
                // Not cached: nothing would keep such an entry current if the id registered.
                return Ok(Grants {
                    policies: Arc::new(policies.state),
                    registered: false,
                    deleted: false,
                    revoked_families: Arc::default(),
                });
            }
            let mut inner = self.write();
            let seen = inner.seen.get(subject).copied().unwrap_or(0);
            if seen > policies.version {
                continue; // the follower already applied newer events: load again
            }
            let mut revoked_families = account.state.revoked_families().clone();
            if let Some(seen) = inner.revoked_families.get(subject) {
                revoked_families.extend(seen.iter().copied());
            }
            let entry = Entry {
                policies: Arc::new(policies.state),
                version: policies.version,
                deleted: account.state.is_deleted() || inner.deleted.contains(subject),
                revoked_families: Arc::new(revoked_families),
            };
            let grants = Grants::from(&entry);
            inner.entries.insert(subject.to_owned(), entry);
            return Ok(grants);
        }
        Err(CacheError::Unstable(subject.to_owned()))
    }

    /// Applies policy events this process just committed.
    pub fn apply_committed(&self, committed: &Committed<PolicySet>) {
        let first = committed.version + 1 - committed.events.len() as u64;
        let mut inner = self.write();
        for (i, event) in committed.events.iter().enumerate() {
            apply_policy_event(
                &mut inner,
                &committed.aggregate_id,
                first + i as u64,
                event.clone(),
            );
        }
    }

    /// Applies account events this process just committed (deletion, revoked token families).
    pub fn apply_committed_account(&self, committed: &Committed<Account>) {
        for event in &committed.events {
            self.apply_account_event(&committed.aggregate_id, event);
        }
    }

    /// Marks an account deleted: its tokens stop working at once.
    pub fn mark_deleted(&self, subject: &str) {
        let mut inner = self.write();
        inner.deleted.insert(subject.to_owned());
        if let Some(entry) = inner.entries.get_mut(subject) {
            entry.deleted = true;
        }
    }

    /// Marks a token family of an account revoked: its tokens stop working at once.
    pub fn mark_family_revoked(&self, subject: &str, family: Uuid) {
        let mut inner = self.write();
        inner
            .revoked_families
            .entry(subject.to_owned())
            .or_default()
            .insert(family);
        if let Some(entry) = inner.entries.get_mut(subject) {
            if !entry.revoked_families.contains(&family) {
                let mut families = (*entry.revoked_families).clone();
                families.insert(family);
                entry.revoked_families = Arc::new(families);
            }
        }
    }

    fn apply_account_event(&self, subject: &str, event: &AccountEvent) {
        match event {
            AccountEvent::AccountDeleted { .. } | AccountEvent::AccountErased { .. } => {
                self.mark_deleted(subject)
            }
            AccountEvent::RefreshTokenFamilyRevoked { family } => {
                self.mark_family_revoked(subject, *family)
            }
            _ => {}
        }
    }

    /// Applies one event of the global log (other events are ignored).
    pub fn apply_stored(&self, event: &StoredEvent) {
        match event.aggregate_type.as_str() {
            "policy_set" => match event.decode::<PolicySetEvent>() {
                Ok(decoded) => {
                    let mut inner = self.write();
                    apply_policy_event(&mut inner, &event.aggregate_id, event.version, decoded);
                }
                Err(error) => tracing::warn!(%error, "policy event not applied to the cache"),
            },
            "account"
                if matches!(
                    event.event_type.as_str(),
                    "AccountDeleted" | "AccountErased" | "RefreshTokenFamilyRevoked"
                ) =>
            {
                match event.decode::<AccountEvent>() {
                    Ok(decoded) => self.apply_account_event(&event.aggregate_id, &decoded),
                    Err(error) => tracing::warn!(%error, "account event not applied to the cache"),
                }
            }
            _ => {}
        }
    }

    /// Follows the global log from its start, forever, applying policy events, deletions and
    /// revoked token families. Read errors are logged and retried.
    pub async fn follow(self: Arc<Self>, store: Store) {
        let mut checkpoint = Checkpoint::START;
        loop {
            match store.read_after(checkpoint, 500).await {
                Ok(batch) if !batch.is_empty() => {
                    for event in &batch {
                        self.apply_stored(event);
                        checkpoint = event.checkpoint();
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "policy cache: reading the log failed"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies the event at `version` of `subject`'s policy set: in order, once. A gap drops the
/// entry, which is then reloaded from the store on its next use.
fn apply_policy_event(inner: &mut Inner, subject: &str, version: u64, event: PolicySetEvent) {
    let seen = inner.seen.entry(subject.to_owned()).or_insert(0);
    *seen = (*seen).max(version);
    let Some(entry) = inner.entries.get_mut(subject) else {
        return;
    };
    if version <= entry.version {
        return;
    }
    if version > entry.version + 1 {
        inner.entries.remove(subject);
        return;
    }
    let mut policies = (*entry.policies).clone();
    cqrs_es::Aggregate::apply(&mut policies, event);
    entry.policies = Arc::new(policies);
    entry.version = version;
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Policy;

    fn cached(inner: &mut Inner, subject: &str, version: u64, policies: &[&str]) {
        inner.entries.insert(
            subject.to_owned(),
            Entry {
                policies: Arc::new(policies.iter().map(|p| Policy::parse(p).unwrap()).collect()),
                version,
                deleted: false,
                revoked_families: Arc::default(),
            },
        );
    }

    fn granted(policy: &str) -> PolicySetEvent {
        PolicySetEvent::PolicyGranted {
            policy: Policy::parse(policy).unwrap(),
        }
    }

    #[test]
    fn policy_events_apply_in_version_order_once() {
        let mut inner = Inner::default();
        cached(&mut inner, "s", 1, &["s:get:orders:1"]);
        // An event the cached state already holds is skipped, the next one applies.
        apply_policy_event(&mut inner, "s", 1, granted("s:get:orders:1"));
        apply_policy_event(&mut inner, "s", 2, granted("s:get:orders:2"));
        let entry = &inner.entries["s"];
        assert_eq!(entry.version, 2);
        assert_eq!(entry.policies.len(), 2);
        assert!(entry.policies.allows("s", "get", "orders", "2"));
    }

    #[test]
    fn a_gap_in_versions_drops_the_entry_for_a_reload() {
        let mut inner = Inner::default();
        cached(&mut inner, "s", 1, &[]);
        apply_policy_event(&mut inner, "s", 3, granted("s:get:orders:3"));
        assert!(!inner.entries.contains_key("s"));
        assert_eq!(inner.seen["s"], 3);
    }

    #[test]
    fn a_deleted_subject_is_allowed_nothing() {
        let cache = PolicyCache::new();
        cached(&mut cache.write(), "s", 1, &["s:*:*:*"]);
        cache.mark_deleted("s");
        let grants = Grants::from(&cache.read().entries["s"]);
        assert!(grants.is_deleted());
        assert!(!grants.allows("s", "get", "orders", "1"));
    }

    #[test]
    fn a_revoked_family_is_seen_by_cached_and_later_loaded_entries() {
        let cache = PolicyCache::new();
        cached(&mut cache.write(), "s", 1, &[]);
        let family = Uuid::from_u128(7);
        cache.mark_family_revoked("s", family);
        cache.mark_family_revoked("t", family);
        let grants = Grants::from(&cache.read().entries["s"]);
        assert!(grants.is_family_revoked(family));
        assert!(!grants.is_family_revoked(Uuid::from_u128(8)));
        assert!(cache.read().revoked_families["t"].contains(&family));
    }
}
