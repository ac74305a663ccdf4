//! HS256 access and refresh tokens, their token families, and the signing key (from settings,
//! or generated once and kept in the database's `secrets` table).

use anyhow::Context;
use base64::Engine;
use chrono::Utc;
use eventstore_config::{Settings, Store};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

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

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
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
    /// The token family: every pair bought by rotating the refresh tokens of one login (or
    /// registration) shares it, and reusing a rotated refresh token revokes it. Tokens from
    /// before families existed have none: their family is their own `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
}

impl Claims {
    /// The token's family.
    pub fn family(&self) -> Uuid {
        self.fam.unwrap_or(self.jti)
    }
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

    /// A new access + refresh pair for `subject`, starting a new token family (a login or a
    /// registration).
    pub fn issue(&self, subject: &str) -> anyhow::Result<TokenPair> {
        self.issue_in(subject, Uuid::now_v7())
    }

    /// A new pair for `subject` in the token family `family` (a refresh-token rotation).
    pub fn issue_in(&self, subject: &str, family: Uuid) -> anyhow::Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.sign(subject, TokenKind::Access, self.access_ttl, family)?,
            refresh_token: self.sign(subject, TokenKind::Refresh, self.refresh_ttl, family)?,
        })
    }

    fn sign(
        &self,
        subject: &str,
        typ: TokenKind,
        ttl: i64,
        family: Uuid,
    ) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            jti: Uuid::now_v7(),
            iat: now,
            exp: now.saturating_add(ttl),
            typ,
            fam: Some(family),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token")
    }

    /// The claims of a token signed with this key, unexpired, of kind `kind`; otherwise
    /// [`AuthError::Invalid`].
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| AuthError::Invalid(format!("invalid token: {e}")))?;
        if data.claims.typ != kind {
            return Err(AuthError::Invalid(format!(
                "invalid token: expected a {} token",
                kind.as_str()
            )));
        }
        Ok(data.claims)
    }
}

async fn generated_secret(store: &Store) -> anyhow::Result<Vec<u8>> {
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let fresh = base64::engine::general_purpose::STANDARD.encode(bytes);
    let (value, _) =
        eventstore_config::secrets::get_or_insert(store, JWT_SECRET_NAME, fresh).await?;
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .context("the stored JWT secret is not base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef", &Settings::default())
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let tokens = tokens();
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
            Err(AuthError::Invalid(_))
        ));
        let other = Tokens::new(b"another key, another signature!!", &Settings::default());
        assert!(matches!(
            other.verify(&pair.access_token, TokenKind::Access),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn a_rotated_pair_stays_in_its_family_and_a_login_starts_a_new_one() {
        let tokens = tokens();
        let first = tokens.issue("a1").unwrap();
        let family = tokens
            .verify(&first.refresh_token, TokenKind::Refresh)
            .unwrap()
            .family();
        let rotated = tokens.issue_in("a1", family).unwrap();
        for token in [&rotated.access_token, &first.access_token] {
            assert_eq!(
                tokens.verify(token, TokenKind::Access).unwrap().family(),
                family
            );
        }
        let login = tokens.issue("a1").unwrap();
        assert_ne!(
            tokens
                .verify(&login.access_token, TokenKind::Access)
                .unwrap()
                .family(),
            family
        );
    }
}
