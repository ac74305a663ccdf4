//! Request extractors whose rejections are [`ApiError`]s naming the field at fault: JSON bodies,
//! UUID path parameters and the `If-Match` header.
//!
//! A body is checked in this order: its `Content-Type` (JSON, else 415), its size
//! (413), that it is exactly one JSON value (400), that every string in it, keys included,
//! keeps the text rule of [`domain::text`] (422 naming the JSON path), and then that it fits the
//! command (422 naming the field).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body deserialized into `T`. A `Content-Type` other than JSON → 415; too large → 413;
/// not exactly one JSON value → 400; a string breaking the text rule, or JSON that does not fit
/// `T` (unknown or missing field, wrong type, invalid value) → 422 naming the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_content_type(req.headers())?;
        let bytes = read_body(req.into_body(), state.settings().max_body_bytes).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a whole body of at most `limit` bytes: larger → 413, slower than its deadline → 408
/// (see [`web::deadline`]), a broken stream → 400.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    web::body::read_limited(body, limit)
        .await
        .map_err(|error| match error {
            web::body::BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            web::body::BodyError::Read(inner) => {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&inner);
                while let Some(e) = cause {
                    if let Some(timeout) = e.downcast_ref::<web::deadline::BodyTimedOut>() {
                        return ApiError::RequestTimeout(timeout.to_string());
                    }
                    cause = e.source();
                }
                ApiError::bad_request(format!("cannot read the request body: {inner}"), None)
            }
        })
}

/// Refuses a body whose `Content-Type` is missing or not JSON (`application/json` or
/// `application/<x>+json`, any parameters) with 415.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "the body has no Content-Type: send it as Content-Type: application/json".into(),
        ));
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let is_json = essence.as_deref().is_some_and(|mime| {
        mime == "application/json"
            || mime
                .strip_prefix("application/")
                .is_some_and(|sub| sub.ends_with("+json"))
    });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ))
    }
}

/// Deserializes `bytes`, which must be exactly one JSON value (else 400), as `T`. Every string
/// in it must keep the text rule (else 422 naming its JSON path); a data error names its field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::bad_request(
            format!(
                "the body is not valid JSON: {}",
                strip_position(&error.to_string())
            ),
            None,
        )
    })?;
    check_text(&value, &mut String::new())?;
    // JSON does not tell 5 from 5.0 (nor does JSON Schema's `integer`): a whole number written
    // with a fraction is read as the integer.
    let mut value = value;
    let normalized = integral_floats_to_integers(&mut value).then(|| value.to_string());
    let bytes = normalized.as_deref().map(str::as_bytes).unwrap_or(bytes);
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = strip_position(&inner.to_string());
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = field_of(&path, &message);
                    Err(ApiError::Unprocessable { message, field })
                }
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => Err(
                    ApiError::bad_request(format!("the body is not valid JSON: {message}"), None),
                ),
                serde_json::error::Category::Io => Err(ApiError::bad_request(message, None)),
            }
        }
    }
}

/// Checks every string and object key in `value` against [`domain::text::check`]; `path` is
/// the JSON path of `value` (`items[0].name`, empty at the top).
fn check_text(value: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
    let refuse = |path: &str, error: domain::TextError| {
        let field = if path.is_empty() { None } else { Some(path) };
        let name = field.unwrap_or("the body");
        ApiError::unprocessable(format!("{name} {error}"), field)
    };
    match value {
        serde_json::Value::String(text) => {
            domain::text::check(text).map_err(|error| refuse(path, error))
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if let Err(error) = domain::text::check(key) {
                    return Err(refuse(path, error));
                }
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Replaces every float in `value` that is a whole number within `i64`/`u64` by that integer;
/// true when one was replaced.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) => {
            let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
                return false;
            };
            if float.fract() != 0.0 || !float.is_finite() {
                return false;
            }
            // 2^63 and 2^64 are exact as f64; the casts below are within range.
            let integer = if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&float)
            {
                serde_json::Number::from(float as i64)
            } else if (0.0..1.844_674_407_370_955_2e19).contains(&float) {
                serde_json::Number::from(float as u64)
            } else {
                return false;
            };
            *number = integer;
            true
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            integral_floats_to_integers(item) | changed
        }),
        serde_json::Value::Object(fields) => fields.values_mut().fold(false, |changed, item| {
            integral_floats_to_integers(item) | changed
        }),
        _ => false,
    }
}

/// serde_json appends " at line L column C"; the field is a better locator.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The JSON path of a data error. For an unknown or missing field serde reports the enclosing
/// object's path, so the field's own name (quoted in the message) is appended.
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            let start = message.find(prefix)? + prefix.len();
            let end = message[start..].find('`')? + start;
            Some(message[start..end].to_owned())
        });
    let base = if path == "." { "" } else { path };
    // serde_path_to_error already ends the path of an unknown field with its name.
    if let Some(name) = &named {
        if base == name || base.ends_with(&format!(".{name}")) {
            return Some(base.to_owned());
        }
    }
    match (base.is_empty(), named) {
        (true, Some(name)) => Some(name),
        (false, Some(name)) => Some(format!("{base}.{name}")),
        (true, None) => None,
        (false, None) => Some(base.to_owned()),
    }
}

/// The request's `X-Request-Id` (set by the router when the client sent none); it becomes the
/// `request_id` and `correlation_id` of the events the request appends.
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<String>);

/// Longest `X-Request-Id` carried into event metadata.
pub const MAX_REQUEST_ID_LEN: usize = 128;

impl RequestId {
    /// The request id of `parts`, if it is 1 to 128 visible ASCII characters.
    pub fn of(parts: &Parts) -> Self {
        RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= MAX_REQUEST_ID_LEN
                        && v.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(str::to_owned),
        )
    }

    /// Event metadata for a command `actor` issues in this request.
    pub fn metadata(&self, actor: &str) -> eventstore_config::EventMetadata {
        self.origin().metadata(actor)
    }

    /// The request's origin, for the use cases.
    pub fn origin(&self) -> application::Origin {
        application::Origin {
            request_id: self.0.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId::of(parts))
    }
}

/// The `{id}` path parameter as a UUID; anything else → 400 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text(), Some("id")))?;
        Uuid::parse_str(&raw)
            .map(PathId)
            .map_err(|_| ApiError::bad_request(format!("{raw:?} is not a UUID"), Some("id")))
    }
}

/// The optional `If-Match: <version>` header (`3`, `"3"` or `W/"3"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let invalid = || {
            ApiError::bad_request(
                "If-Match must be an aggregate version, e.g. \"3\"",
                Some("If-Match"),
            )
        };
        let text = value.to_str().map_err(|_| invalid())?.trim();
        let text = text.strip_prefix("W/").unwrap_or(text);
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        text.parse::<u64>()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: domain::Quantity,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Line>,
    }

    fn field(json: &str) -> Option<String> {
        match parse_json::<Order>(json.as_bytes()).unwrap_err() {
            ApiError::Unprocessable { field, .. } => field,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_data_error_names_the_nested_field() {
        assert_eq!(
            field(r#"{"items":[{"quantity":0}]}"#).as_deref(),
            Some("items[0].quantity")
        );
        assert_eq!(
            field(r#"{"items":[{"quantity":1,"colour":2}]}"#).as_deref(),
            Some("items[0].colour")
        );
        assert_eq!(field(r#"{}"#).as_deref(), Some("items"));
    }

    #[test]
    fn given_trailing_data_after_the_value_when_parsed_then_it_is_a_bad_request() {
        for body in [
            &b"{\"items\":[]} trailing"[..],
            b"{\"items\":[]}{\"items\":[]}",
            b"{\"items\":[]} 1",
        ] {
            assert!(
                matches!(parse_json::<Order>(body), Err(ApiError::BadRequest { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn given_a_control_character_anywhere_when_parsed_then_the_json_path_is_named() {
        let field = |json: &str| match parse_json::<serde_json::Value>(json.as_bytes()) {
            Err(ApiError::Unprocessable { field, .. }) => field,
            other => panic!("expected 422, got {other:?}"),
        };
        assert_eq!(
            field(r#"{"items":[{"x":"a\u0000b"}]}"#).as_deref(),
            Some("items[0].x")
        );
        assert_eq!(
            field(r#"{"reason":"\u001b[31m"}"#).as_deref(),
            Some("reason")
        );
        assert_eq!(field(r#"{"a\u0000":1}"#).as_deref(), Some("a\u{0}"));
        assert_eq!(field(r#""\u0007""#), None);
        assert!(parse_json::<serde_json::Value>(br#"{"ok":"tab\tand\nline"}"#).is_ok());
    }

    #[test]
    fn given_a_content_type_when_checked_then_only_json_passes() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            check_content_type(&headers)
        };
        assert!(with("application/json").is_ok());
        assert!(with("Application/JSON; charset=utf-8").is_ok());
        assert!(with("application/merge-patch+json").is_ok());
        assert!(check_content_type(&HeaderMap::new()).is_err());
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            assert!(matches!(
                with(refused),
                Err(ApiError::UnsupportedMediaType(_))
            ));
        }
    }

    #[test]
    fn given_a_whole_number_written_with_a_fraction_when_parsed_then_it_is_the_integer() {
        #[derive(Debug, serde::Deserialize)]
        struct Amount {
            amount: i64,
            stock: u32,
        }
        let parsed: Amount = parse_json(br#"{"amount": 5.0, "stock": 7e2}"#).unwrap();
        assert_eq!((parsed.amount, parsed.stock), (5, 700));
        assert!(matches!(
            parse_json::<Amount>(br#"{"amount": 5.5, "stock": 1}"#),
            Err(ApiError::Unprocessable { .. })
        ));
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Order>(b"{\"items\": ["),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
