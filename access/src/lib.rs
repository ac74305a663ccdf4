//! Authentication shared by every eventshop API (REST, GraphQL, and later WebSocket
//! subscriptions): one [`Authenticator`] checks a request's `Authorization` header — its form
//! ([`bearer`]), the token's signature, expiry and kind ([`Tokens`]), and that its account is not
//! deleted and its token family not revoked ([`PolicyCache`]). Also argon2 password hashing with
//! a bound on concurrent hashes ([`Passwords`]) and the login rate limits ([`LoginLimits`]).
//!
//! May depend on `domain` and `eventstore-config` (and the `http` header types), never on an API
//! crate: `command-api` and `query-api` both depend on it.
#![forbid(unsafe_code)]

pub mod authenticator;
pub mod bearer;
pub mod cache;
pub mod error;
pub mod limits;
pub mod passwords;
pub mod tokens;

pub use authenticator::{Authenticator, Follower, Principal};
pub use bearer::{bearer, bearer_of, BearerError, BEARER_FORM};
pub use cache::{Grants, PolicyCache};
pub use error::AuthError;
pub use limits::{LoginLimits, Scope, Throttled};
pub use passwords::{hash_password, verify_password, PasswordError, Passwords};
pub use tokens::{Claims, TokenKind, TokenPair, Tokens, MIN_SECRET_LEN};
