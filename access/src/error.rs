//! Why a request is not authenticated: the one error of the authenticator and the token checks.

use crate::bearer::BearerError;

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (REST 401; GraphQL `UNAUTHENTICATED` where a caller is needed).
    #[error("missing bearer token")]
    Missing,
    /// A malformed header, or a token that is forged, expired, of the wrong kind, of a
    /// deleted account or of a revoked family (REST 401, GraphQL `UNAUTHENTICATED`).
    #[error("{0}")]
    Invalid(String),
    /// The store could not be read to check the account (500 / `INTERNAL_SERVER_ERROR`).
    #[error("checking the token failed: {0:#}")]
    Unavailable(anyhow::Error),
}

impl From<BearerError> for AuthError {
    fn from(error: BearerError) -> Self {
        match error {
            BearerError::Missing => AuthError::Missing,
            BearerError::Malformed => AuthError::Invalid(error.to_string()),
        }
    }
}
