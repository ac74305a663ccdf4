//! The one accepted form of the `Authorization` header, for every API:
//!
//! `Authorization: <scheme> <token>` where the scheme is `Bearer` in any letter case
//! (`Bearer`, `bearer`, `BEARER`, …: auth schemes are case-insensitive, RFC 9110 §11.1), followed
//! by one or more spaces or tabs, then the token: one or more token68 characters
//! (`A-Z a-z 0-9 - . _ ~ + /`, then optional `=` padding), as a JWT is. Spaces and tabs around the
//! whole value are ignored. Anything else — another scheme (`Basic …`, `Token …`), no token,
//! two tokens, a comma, a quote, a non-ASCII byte, an empty value — is malformed, and so is a
//! request with more than one `Authorization` header.

use http::{HeaderMap, HeaderValue};

/// The accepted form, for error messages.
pub const BEARER_FORM: &str = "Bearer <access token>";

/// Why an `Authorization` header was not a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// There is no `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// There is one, but not of the accepted form.
    #[error("the Authorization header must be `{BEARER_FORM}`")]
    Malformed,
}

/// The token of the request's only `Authorization` header.
pub fn bearer_of(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    bearer(first)
}

/// The token of an `Authorization` header value (`None`: no header).
pub fn bearer(value: Option<&HeaderValue>) -> Result<&str, BearerError> {
    let value = value.ok_or(BearerError::Missing)?;
    let text = value.to_str().map_err(|_| BearerError::Malformed)?;
    let text = text.trim_matches([' ', '\t']);
    let (scheme, token) = text.split_once([' ', '\t']).ok_or(BearerError::Malformed)?;
    let token = token.trim_start_matches([' ', '\t']);
    if !scheme.eq_ignore_ascii_case("bearer") || !is_token68(token) {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 9110 §11.2).
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &[u8]) -> Result<String, BearerError> {
        bearer(Some(&HeaderValue::from_bytes(value).unwrap())).map(str::to_owned)
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_surrounding_blanks_are_ignored() {
        for form in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER a.b.c",
            "bEaReR a.b.c",
            "Bearer   a.b.c",
            "Bearer\ta.b.c",
            " Bearer a.b.c ",
            "\tBearer a.b.c\t",
        ] {
            assert_eq!(parse(form.as_bytes()).as_deref(), Ok("a.b.c"), "{form:?}");
        }
        assert_eq!(parse(b"Bearer abc==").as_deref(), Ok("abc=="));
    }

    #[test]
    fn every_other_form_is_malformed() {
        for form in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearera.b.c",
            b"Basic a.b.c",
            b"Token a.b.c",
            b"Bearer a.b.c d",
            b"Bearer a,b",
            b"Bearer \"a.b.c\"",
            b"Bearer =abc",
            b"Bearer a=b",
            b"Bearer a.b.c\xff",
            b"Bearer: a.b.c",
        ] {
            assert_eq!(
                parse(form),
                Err(BearerError::Malformed),
                "{:?}",
                String::from_utf8_lossy(form)
            );
        }
        assert_eq!(bearer(None), Err(BearerError::Missing));
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        let mut headers = HeaderMap::new();
        headers.append("authorization", HeaderValue::from_static("Bearer a"));
        assert_eq!(bearer_of(&headers), Ok("a"));
        headers.append("authorization", HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_of(&headers), Err(BearerError::Malformed));
        assert_eq!(bearer_of(&HeaderMap::new()), Err(BearerError::Missing));
    }
}
