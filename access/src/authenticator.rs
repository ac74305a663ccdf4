//! The one authenticator of every API: from an `Authorization` header to a [`Principal`], or
//! why not.

use std::sync::Arc;

use eventstore_config::{Settings, Store};
use http::{HeaderMap, HeaderValue};
use tokio::task::JoinHandle;

use crate::bearer::{bearer, bearer_of};
use crate::cache::{Grants, PolicyCache};
use crate::error::AuthError;
use crate::tokens::{Claims, TokenKind, Tokens};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account id (the token's subject).
    pub subject: String,
    /// The access token's claims.
    pub claims: Claims,
    /// Its policies, as of this request.
    pub grants: Grants,
}

/// Checks access tokens: form, signature, expiry, kind, a live account and an unrevoked token
/// family (cheap to clone; clones share the cache).
#[derive(Debug, Clone)]
pub struct Authenticator(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tokens: Tokens,
    cache: Arc<PolicyCache>,
    store: Store,
}

/// The background task keeping an authenticator's cache current; stops when dropped.
#[derive(Debug)]
pub struct Follower(JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Authenticator {
    /// Over `store` with `tokens` and `cache`.
    pub fn new(tokens: Tokens, cache: Arc<PolicyCache>, store: Store) -> Self {
        Self(Arc::new(Inner {
            tokens,
            cache,
            store,
        }))
    }

    /// With the signing key of `settings` (or `store`) and an empty cache. Start its
    /// [`follow`](Self::follow)er so that it learns of deletions and revocations.
    pub async fn load(settings: &Settings, store: &Store) -> anyhow::Result<Self> {
        let tokens = Tokens::load(settings, store).await?;
        Ok(Self::new(tokens, Arc::default(), store.clone()))
    }

    /// Starts following the global log into the cache (see [`PolicyCache::follow`]).
    pub fn follow(&self) -> Follower {
        Follower(tokio::spawn(
            self.0.cache.clone().follow(self.0.store.clone()),
        ))
    }

    /// Token signing and checking.
    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    /// The policy cache.
    pub fn cache(&self) -> &Arc<PolicyCache> {
        &self.0.cache
    }

    /// The caller of a request with these headers (exactly one `Authorization` header).
    pub async fn authenticate_headers(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = bearer_of(headers)?;
        self.authenticate_token(token).await
    }

    /// The caller presenting this `Authorization` value (`None`: no header). Also for values
    /// that do not arrive as HTTP headers (a WebSocket `connection_init` payload).
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        let token = bearer(authorization)?;
        self.authenticate_token(token).await
    }

    async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.0.tokens.verify(token, TokenKind::Access)?;
        let grants = self
            .0
            .cache
            .grants(&self.0.store, &claims.sub)
            .await
            .map_err(|e| AuthError::Unavailable(e.into()))?;
        if !grants.is_registered() {
            return Err(AuthError::Invalid(
                "the token's account does not exist".into(),
            ));
        }
        if grants.is_deleted() {
            return Err(AuthError::Invalid("the account was deleted".into()));
        }
        if grants.is_family_revoked(claims.family()) {
            return Err(AuthError::Invalid(
                "this token was revoked: a refresh token of its session was reused".into(),
            ));
        }
        Ok(Principal {
            subject: claims.sub.clone(),
            claims,
            grants,
        })
    }
}
