//! The console's session: the cookie `eventshop_console` holds an access token of the signed-in
//! account (issued by the login use case, checked by the shared [`access::Authenticator`] on
//! every request, so a deleted account or a revoked token family ends the session at once), and
//! every state-changing form carries a CSRF token derived from that cookie.
//!
//! The cookie is `HttpOnly` (scripts cannot read it), `SameSite=Strict` (no cross-site request
//! carries it), `Path=/console` and lives as long as the access token (`access_token_ttl_secs`):
//! then the console asks to sign in again. It is not `Secure`: eventshop serves plain HTTP (on
//! localhost a `Secure` cookie would not be sent back); behind a TLS proxy, add it there.
//!
//! The CSRF token is `sha256("eventshop-console-csrf:" + cookie)` in hex: bound to the session,
//! and unknowable to another site, which can neither read the cookie nor the page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::Console;

/// The session cookie's name.
pub const COOKIE: &str = "eventshop_console";

/// The cookie's value in a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value starting a session holding `token` for `max_age_secs`.
pub fn set_cookie(token: &str, max_age_secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age_secs}"
    ))
    .unwrap_or_else(|_| clear_cookie())
}

/// The `Set-Cookie` value ending the session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "eventshop_console=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0",
    )
}

/// The CSRF token of the session whose cookie holds `token`.
pub fn csrf_of(token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"eventshop-console-csrf:");
    hash.update(token.as_bytes());
    hex::encode(hash.finalize())
}

/// Whether `given` is the session's CSRF token `expected` (compared in constant time).
pub fn csrf_matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A signed-in account (admin or not): its id and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account id.
    pub subject: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Whether it holds `<id>:*:*:*`, as admins do.
    pub admin: bool,
}

pub use crate::admin::Admin;

impl Console {
    /// The signed-in account of a request, if its cookie holds a valid access token.
    pub(crate) async fn signed_in(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let token = cookie(headers)?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        match self.0.authenticator.authenticate(Some(&bearer)).await {
            Ok(principal) => {
                let admin = principal.grants.allows(&principal.subject, "*", "*", "*");
                Some(SignedIn {
                    subject: principal.subject,
                    csrf: csrf_of(&token),
                    admin,
                })
            }
            Err(access::AuthError::Unavailable(cause)) => {
                tracing::error!(
                    error = format!("{cause:#}"),
                    "console: checking a session failed"
                );
                None
            }
            Err(_) => None,
        }
    }
}

impl FromRequestParts<Console> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Some(signed_in) = console.signed_in(&parts.headers).await else {
            return Err(Redirect::to("/console/login").into_response());
        };
        if !signed_in.admin {
            return Err((
                StatusCode::FORBIDDEN,
                crate::layout::forbidden(&signed_in.csrf),
            )
                .into_response());
        }
        let email = console.email_of(&signed_in.subject).await;
        Ok(Admin {
            subject: signed_in.subject,
            csrf: signed_in.csrf,
            email,
        })
    }
}

impl Admin {
    /// 403 unless `given` (a form's `csrf` field) is this session's CSRF token.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), crate::error::PageError> {
        if csrf_matches(&self.csrf, given) {
            Ok(())
        } else {
            Err(crate::error::PageError::new(
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; eventshop_console=tok; b=2"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("tok"));
    }

    #[test]
    fn a_csrf_token_matches_only_its_session() {
        let csrf = csrf_of("session-a");
        assert!(csrf_matches(&csrf_of("session-a"), Some(&csrf)));
        assert!(!csrf_matches(&csrf_of("session-b"), Some(&csrf)));
        assert!(!csrf_matches(&csrf, None));
        assert!(!csrf_matches(&csrf, Some("")));
    }
}
