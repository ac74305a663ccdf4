//! Authorization: the [`Caller`] extractor (a valid access token of a live account) and the
//! local policy cache it checks against.
//!
//! The cache holds, per subject, its `PolicySet` and the version it was folded to, plus whether
//! the account was deleted. A subject is loaded from the store on first use (login warms it);
//! a background follower of the global log ([`PolicyCache::follow`]) applies later policy
//! events and `AccountDeleted` in version order, and this process's own policy commands are
//! applied right after they commit, so a change is visible here at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::account::{Account, AccountEvent};
use domain::policy_set::{PolicySet, PolicySetEvent};
use eventstore_config::{Checkpoint, Committed, Store, StoredEvent};

use crate::auth::TokenKind;
use crate::error::ApiError;
use crate::state::AppState;

/// One subject as the cache knows it.
#[derive(Debug, Clone)]
struct Entry {
    policies: Arc<PolicySet>,
    version: u64,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// The newest policy-set version the follower has seen per subject (cached or not): a load
    /// older than this raced with the follower and is redone.
    seen: HashMap<String, u64>,
    /// Accounts the follower has seen deleted.
    deleted: HashSet<String>,
}

/// The subjects' policies, kept current by policy events.
#[derive(Debug, Default)]
pub struct PolicyCache {
    inner: RwLock<Inner>,
}

/// What a subject may do, as of one look at the cache.
#[derive(Debug, Clone)]
pub struct Grants {
    policies: Arc<PolicySet>,
    deleted: bool,
}

impl PolicyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subject's grants, loading them from `store` on a miss.
    pub async fn grants(&self, store: &Store, subject: &str) -> Result<Grants, ApiError> {
        if let Some(entry) = self.read().entries.get(subject) {
            return Ok(Grants {
                policies: entry.policies.clone(),
                deleted: entry.deleted,
            });
        }
        self.load(store, subject).await
    }

    /// Loads (or reloads) the subject from the store into the cache.
    #[tracing::instrument(skip(self, store))]
    pub async fn load(&self, store: &Store, subject: &str) -> Result<Grants, ApiError> {
        for _ in 0..5 {
            let policies = store.load_current::<PolicySet>(subject).await?;
            let account = store.load_current::<Account>(subject).await?;
            let mut inner = self.write();
            let seen = inner.seen.get(subject).copied().unwrap_or(0);
            if seen > policies.version {
                continue; // the follower already applied newer events: load again
            }
            let entry = Entry {
                policies: Arc::new(policies.state),
                version: policies.version,
                deleted: account.state.is_deleted() || inner.deleted.contains(subject),
            };
            let grants = Grants {
                policies: entry.policies.clone(),
                deleted: entry.deleted,
            };
            inner.entries.insert(subject.to_owned(), entry);
            return Ok(grants);
        }
        Err(ApiError::internal(anyhow::anyhow!(
            "the policies of {subject} kept changing while being loaded"
        )))
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

    /// Marks an account deleted: its tokens stop working at once.
    pub fn mark_deleted(&self, subject: &str) {
        let mut inner = self.write();
        inner.deleted.insert(subject.to_owned());
        if let Some(entry) = inner.entries.get_mut(subject) {
            entry.deleted = true;
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
            "account" if event.event_type == "AccountDeleted" => {
                if let Ok(AccountEvent::AccountDeleted { .. }) = event.decode::<AccountEvent>() {
                    self.mark_deleted(&event.aggregate_id);
                }
            }
            _ => {}
        }
    }

    /// Follows the global log from its start, forever, applying policy and deletion events.
    /// Read errors are logged and retried.
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
    cqrs_apply(&mut policies, event);
    entry.policies = Arc::new(policies);
    entry.version = version;
}

fn cqrs_apply(set: &mut PolicySet, event: PolicySetEvent) {
    cqrs_es::Aggregate::apply(set, event);
}

/// An authenticated caller: a valid access token of an account that is not deleted.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account id (the token's subject).
    pub id: String,
    grants: Grants,
    request_id: crate::extract::RequestId,
}

impl Caller {
    /// Metadata for the events a command of this caller appends (actor, request id).
    pub fn metadata(&self) -> eventstore_config::EventMetadata {
        self.request_id.metadata(&self.id)
    }

    /// Whether the caller's policies allow `action` on `resource_type`/`resource_id`.
    pub fn allows(&self, action: &str, resource_type: &str, resource_id: &str) -> bool {
        !self.grants.deleted
            && self
                .grants
                .policies
                .allows(&self.id, action, resource_type, resource_id)
    }

    /// As [`allows`](Self::allows), as a 403 when not.
    pub fn require(
        &self,
        action: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), ApiError> {
        if self.allows(action, resource_type, resource_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "no policy allows {action} on {resource_type}/{resource_id}"
            )))
        }
    }
}

/// The bearer token of `parts`, if any; a malformed header is a 401.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <access token>`".into(),
        )),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts)?.ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let claims = state.tokens().verify(token, TokenKind::Access)?;
        let grants = state.cache().grants(state.store(), &claims.sub).await?;
        if grants.deleted {
            return Err(ApiError::Unauthorized("the account was deleted".into()));
        }
        Ok(Caller {
            id: claims.sub,
            grants,
            request_id: crate::extract::RequestId::of(parts),
        })
    }
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
        let entry = cache.read().entries["s"].clone();
        let caller = Caller {
            id: "s".into(),
            grants: Grants {
                policies: entry.policies,
                deleted: entry.deleted,
            },
            request_id: Default::default(),
        };
        assert!(!caller.allows("get", "orders", "1"));
    }
}
