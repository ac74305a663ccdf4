//! Authorization for the REST API: the [`Caller`] extractor — the shared
//! [`access::Authenticator`]'s principal (a valid access token of a live account, of an
//! unrevoked token family) with the request's id — and its policy checks. The policy cache
//! itself lives in `access` ([`PolicyCache`]), shared with the GraphQL API.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub use access::{Grants, PolicyCache};

use crate::error::ApiError;
use crate::state::AppState;

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
        self.grants
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

/// The bearer token of `parts` (see [`access::bearer`] for the accepted form), if there is
/// an `Authorization` header; a malformed one is a 401.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    match access::bearer_of(&parts.headers) {
        Ok(token) => Ok(Some(token)),
        Err(access::BearerError::Missing) => Ok(None),
        Err(error) => Err(ApiError::Unauthorized(error.to_string())),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = state
            .authenticator()
            .authenticate_headers(&parts.headers)
            .await?;
        Ok(Caller {
            id: principal.subject,
            grants: principal.grants,
            request_id: crate::extract::RequestId::of(parts),
        })
    }
}
