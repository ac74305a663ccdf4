//! Authentication for the REST API: the shared `access` crate's tokens and password hashing
//! (re-exported under their old paths), and how its errors answer over HTTP.

pub use access::{
    hash_password, verify_password, Claims, TokenKind, TokenPair, Tokens, MIN_SECRET_LEN,
};

use crate::error::ApiError;

impl From<access::AuthError> for ApiError {
    fn from(error: access::AuthError) -> Self {
        match error {
            access::AuthError::Missing | access::AuthError::Invalid(_) => {
                ApiError::Unauthorized(error.to_string())
            }
            access::AuthError::Unavailable(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<access::PasswordError> for ApiError {
    fn from(error: access::PasswordError) -> Self {
        match error {
            access::PasswordError::Busy { retry_after } => ApiError::ServiceUnavailable {
                message: error.to_string(),
                retry_after_secs: retry_after.as_secs().max(1),
            },
            access::PasswordError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<access::Throttled> for ApiError {
    fn from(error: access::Throttled) -> Self {
        ApiError::TooManyRequests {
            message: error.to_string(),
            field: match error.scope {
                access::Scope::Account => Some("email".to_owned()),
                access::Scope::Address => None,
            },
            retry_after_secs: error.retry_after.as_secs().max(1),
        }
    }
}

impl From<access::cache::CacheError> for ApiError {
    fn from(error: access::cache::CacheError) -> Self {
        ApiError::internal(error)
    }
}
