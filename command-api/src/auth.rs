//! Authentication: argon2 password hashes, HS256 access and refresh tokens, and the signing key
//! (from settings, or generated once and kept in the database's `secrets` table).

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use chrono::Utc;
use eventstore_config::{Settings, Store};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// The `secrets` row holding a generated signing key.
const JWT_SECRET_NAME: &str = "jwt_hs256";

/// Shortest configured signing key accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Which kind of token a JWT is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Authorizes API calls.
    Access,
    /// Buys a new token pair once.
    Refresh,
}

/// The claims of every token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account id.
    pub sub: String,
    /// Token id (revocation of refresh tokens).
    pub jti: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Access or refresh.
    pub typ: TokenKind,
}

/// An issued pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// Short-lived token for `Authorization: Bearer`.
    pub access_token: String,
    /// Long-lived token for `POST /sessions/refresh`.
    pub refresh_token: String,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Signing with `secret`, lifetimes from `settings`.
    pub fn new(secret: &[u8], settings: &Settings) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl: settings.access_token_ttl_secs.min(i64::MAX as u64) as i64,
            refresh_ttl: settings.refresh_token_ttl_secs.min(i64::MAX as u64) as i64,
        }
    }

    /// The signing key of `settings`, or the generated one of `store` (created on first use).
    pub async fn load(settings: &Settings, store: &Store) -> anyhow::Result<Self> {
        let secret = match settings.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) if secret.len() < MIN_SECRET_LEN => {
                anyhow::bail!("the jwt_secret setting must be at least {MIN_SECRET_LEN} bytes long")
            }
            Some(secret) => secret.as_bytes().to_vec(),
            None => generated_secret(store).await?,
        };
        Ok(Self::new(&secret, settings))
    }

    /// A new access + refresh pair for `subject`.
    pub fn issue(&self, subject: &str) -> Result<TokenPair, ApiError> {
        Ok(TokenPair {
            access_token: self.sign(subject, TokenKind::Access, self.access_ttl)?,
            refresh_token: self.sign(subject, TokenKind::Refresh, self.refresh_ttl)?,
        })
    }

    fn sign(&self, subject: &str, typ: TokenKind, ttl: i64) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            jti: Uuid::now_v7(),
            iat: now,
            exp: now.saturating_add(ttl),
            typ,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a valid, unexpired token of kind `kind`; otherwise a 401.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?;
        if data.claims.typ != kind {
            return Err(ApiError::Unauthorized(format!(
                "invalid token: expected a {} token",
                match kind {
                    TokenKind::Access => "access",
                    TokenKind::Refresh => "refresh",
                }
            )));
        }
        Ok(data.claims)
    }
}

async fn generated_secret(store: &Store) -> anyhow::Result<Vec<u8>> {
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let fresh = base64::engine::general_purpose::STANDARD.encode(bytes);
    // Insert-if-absent, then read: every process on the database ends up with the same key.
    let value: String = match store {
        Store::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(JWT_SECRET_NAME)
            .bind(&fresh)
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(JWT_SECRET_NAME)
                .fetch_one(pool)
                .await?
        }
        Store::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(JWT_SECRET_NAME)
            .bind(&fresh)
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = ?1")
                .bind(JWT_SECRET_NAME)
                .fetch_one(pool)
                .await?
        }
    };
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .context("the stored JWT secret is not base64")
}

/// Hashes a password with argon2id (on a blocking thread: it is slow on purpose).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Whether `password` matches the stored argon2 `hash`.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored password hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", &Settings::default());
        let pair = tokens.issue("a1").unwrap();
        assert_eq!(
            tokens
                .verify(&pair.access_token, TokenKind::Access)
                .unwrap()
                .sub,
            "a1"
        );
        assert!(matches!(
            tokens.verify(&pair.refresh_token, TokenKind::Access),
            Err(ApiError::Unauthorized(_))
        ));
        let other = Tokens::new(b"another key, another signature!!", &Settings::default());
        assert!(matches!(
            other.verify(&pair.access_token, TokenKind::Access),
            Err(ApiError::Unauthorized(_))
        ));
    }
}
