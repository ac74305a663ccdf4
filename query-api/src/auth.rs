//! Who is asking, and what their policies let them read.
//!
//! Tokens are checked by the shared [`access::Authenticator`] (the same one as the REST API's:
//! form of the `Authorization` header, signature, expiry, kind, deleted accounts, revoked token
//! families); this module keeps what the request said about its caller ([`Credentials`]) and the
//! caller's policies, read through [`PolicyVersions`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use domain::policy_set::PolicySet;
use eventstore_config::Store;
use tokio::sync::OnceCell;

use crate::db::{self, policy_head, Reader};
use crate::error::{error, internal, Code, GqlResult};

/// What the request said about its caller.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A malformed header, or a token that was refused.
    Invalid(String),
    /// The token could not be checked (the store failed; logged).
    Unavailable,
    /// A verified subject.
    Subject(String),
}

impl Credentials {
    /// What the authenticator said.
    pub(crate) fn of(authenticated: Result<access::Principal, access::AuthError>) -> Self {
        match authenticated {
            Ok(principal) => Credentials::Subject(principal.subject),
            Err(access::AuthError::Missing) => Credentials::Missing,
            Err(access::AuthError::Invalid(why)) => Credentials::Invalid(why),
            Err(access::AuthError::Unavailable(cause)) => {
                tracing::error!(
                    error = format!("{cause:#}"),
                    "authenticating a request failed"
                );
                Credentials::Unavailable
            }
        }
    }
}

/// The caller of one request: credentials, and its policies loaded at most once.
pub(crate) struct Session {
    credentials: Credentials,
    caller: OnceCell<Arc<Caller>>,
    cache: Arc<PolicyVersions>,
}

/// Subjects' policy sets by version: a request checks the newest version with one indexed
/// query and folds (from the newest snapshot) only when it changed.
#[derive(Debug, Default)]
pub(crate) struct PolicyVersions {
    entries: Mutex<HashMap<String, (i64, Arc<PolicySet>)>>,
}

#[derive(sqlx::FromRow)]
struct Head {
    #[sqlx(rename = "policy_head__")]
    version: Option<i64>,
}

/// Entries kept before the cache starts over.
const POLICY_CACHE_SIZE: usize = 10_000;

impl PolicyVersions {
    /// `subject`'s current policies.
    async fn load(&self, store: &Store, subject: &str) -> GqlResult<Arc<PolicySet>> {
        let head = db::counted(policy_head(subject).fetch_optional::<Head>(store))
            .await
            .map_err(internal)?
            .and_then(|h| h.version)
            .unwrap_or(0);
        self.at_head(store, subject, head).await
    }

    /// `subject`'s policies given the newest version of its policy set (`head`, just read):
    /// the cached set when it is that version, else folded from the log.
    async fn at_head(&self, store: &Store, subject: &str, head: i64) -> GqlResult<Arc<PolicySet>> {
        if let Some((version, set)) = self.lock().get(subject) {
            if *version == head {
                return Ok(set.clone());
            }
        }
        let folded = store
            .load_current::<PolicySet>(subject)
            .await
            .map_err(internal)?;
        let set = Arc::new(folded.state);
        let mut entries = self.lock();
        if entries.len() >= POLICY_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(subject.to_owned(), (folded.version as i64, set.clone()));
        Ok(set)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Arc<PolicySet>)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Session {
    pub(crate) fn new(credentials: Credentials, cache: Arc<PolicyVersions>) -> Self {
        Self {
            credentials,
            caller: OnceCell::new(),
            cache,
        }
    }

    /// The authenticated subject, or UNAUTHENTICATED.
    pub(crate) fn subject(&self) -> GqlResult<&str> {
        match &self.credentials {
            Credentials::Subject(subject) => Ok(subject),
            Credentials::Missing => Err(error(
                Code::Unauthenticated,
                "authentication required: send Authorization: Bearer <access token>",
            )),
            Credentials::Invalid(why) => Err(error(Code::Unauthenticated, why.clone())),
            Credentials::Unavailable => Err(internal("checking the token failed")),
        }
    }

    /// The authenticated caller with its current policies, or UNAUTHENTICATED.
    pub(crate) async fn caller(&self, store: &Store) -> GqlResult<Arc<Caller>> {
        self.caller_at(store, None).await
    }

    /// A reader for one resource the caller asks for: until the caller's policies are loaded,
    /// each read also reads their version (see [`Session::caller_after`]).
    pub(crate) fn reader<'a>(&'a self, store: &'a Store) -> Reader<'a> {
        match (&self.credentials, self.caller.initialized()) {
            (Credentials::Subject(subject), false) => Reader::with_policy_head(store, subject),
            _ => Reader::plain(store),
        }
    }

    /// The caller after a read through [`Session::reader`]: its policies are loaded only
    /// when the version read with the data is not the cached one.
    pub(crate) async fn caller_after(
        &self,
        store: &Store,
        reader: &Reader<'_>,
    ) -> GqlResult<Arc<Caller>> {
        self.caller_at(store, reader.policy_head()).await
    }

    async fn caller_at(&self, store: &Store, head: Option<i64>) -> GqlResult<Arc<Caller>> {
        let subject = self.subject()?.to_owned();
        self.caller
            .get_or_try_init(|| async {
                let policies = match head {
                    Some(head) => self.cache.at_head(store, &subject, head).await?,
                    None => self.cache.load(store, &subject).await?,
                };
                Ok(Arc::new(Caller { subject, policies }))
            })
            .await
            .cloned()
    }
}

/// An authenticated caller and the policies it holds now.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account id.
    pub subject: String,
    /// Its policies.
    pub policies: Arc<PolicySet>,
}

/// Which resources of one type a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every resource of the type.
    All,
    /// Only these ids.
    Ids(BTreeSet<String>),
}

impl Caller {
    /// Whether the caller may `get` `resource_type`/`resource_id`.
    pub fn may_get(&self, resource_type: &str, resource_id: &str) -> bool {
        self.policies
            .allows(&self.subject, "get", resource_type, resource_id)
    }

    /// The ids of `resource_type` the caller may `get` (a list filter).
    pub(crate) fn scope(&self, resource_type: &str) -> Scope {
        let mut ids = BTreeSet::new();
        for policy in self.policies.policies() {
            let applies = (policy.subject() == "*" || policy.subject() == self.subject)
                && matches!(policy.action(), "*" | "get")
                && (policy.resource_type() == "*" || policy.resource_type() == resource_type);
            if !applies {
                continue;
            }
            if policy.resource_id() == "*" {
                return Scope::All;
            }
            ids.insert(policy.resource_id().to_owned());
        }
        Scope::Ids(ids)
    }

    /// FORBIDDEN unless the caller may `get` the resource.
    pub(crate) fn require(&self, resource_type: &str, resource_id: &str) -> GqlResult<()> {
        if self.may_get(resource_type, resource_id) {
            Ok(())
        } else {
            Err(crate::error::forbidden(&format!(
                "{resource_type}/{resource_id}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Policy;

    fn caller(subject: &str, policies: &[&str]) -> Caller {
        Caller {
            subject: subject.into(),
            policies: Arc::new(policies.iter().map(|p| Policy::parse(p).unwrap()).collect()),
        }
    }

    #[test]
    fn an_admin_may_list_every_order() {
        assert_eq!(caller("a", &["a:*:*:*"]).scope("orders"), Scope::All);
    }

    #[test]
    fn a_customer_may_list_only_the_orders_granted_to_it() {
        let c = caller(
            "c",
            &[
                "c:get:orders:1",
                "c:put:orders:1",
                "c:post:orders:*",
                "x:get:orders:2",
            ],
        );
        assert_eq!(c.scope("orders"), Scope::Ids(["1".to_string()].into()));
        assert!(c.may_get("orders", "1"));
        assert!(!c.may_get("orders", "2"));
    }
}
