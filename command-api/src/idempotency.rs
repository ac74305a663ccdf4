//! `Idempotency-Key`: a request repeated with the same key (by the same caller) gets the first
//! response back and changes nothing; the same key with another request is a 422.
//!
//! Exactly once, across crashes: nothing is claimed before the command runs. The handler's use
//! case stores the record (key, caller, the request's fingerprint and the response: status,
//! body, kept headers) as a statement of the SAME transaction that appends its events, so a
//! request has both effects or neither. A retry finds the stored response (replayed with
//! `Idempotent-Replayed: true`) or nothing (it runs). A rejection (4xx) is stored too, in its
//! own statement; a 5xx is not stored, so the request can be retried.
//!
//! Concurrent duplicates: within an app, a key in flight answers 409 "in progress". Across
//! processes both run, and the second's record hits the table's primary key at commit, which
//! rolls its whole transaction back; it then answers with the first's stored response.
//!
//! The fingerprint is an HMAC-SHA256 of method, path and body under a server secret (bodies may
//! hold passwords). Token-issuing answers are never stored: a registration's record keeps its
//! answer without tokens, and a replay issues fresh tokens for that account (its repeated body,
//! password included, proves as much as a login); `/sessions` and `/sessions/refresh` refuse
//! the header with a 400.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use eventstore_config::{Sql, Store};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::TokenKind;
use crate::error::{AnsweredMeanwhile, ApiError, IDEMPOTENCY_RECORD};
use crate::respond::{RegisteredRecord, Reply};
use crate::state::{AppState, KeysInFlight};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a response that is a replay of the first one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// Response headers kept with the stored response.
const KEPT_HEADERS: [&str; 3] = ["content-type", "etag", "location"];

/// The caller a key belongs to when no valid access token came with the request.
const ANONYMOUS: &str = "anonymous";

/// An idempotent request in flight: what its use case stores with its events.
#[derive(Debug)]
struct Pending {
    key: String,
    subject: String,
    fingerprint: String,
    /// Set when a use case made the record statement (just before its COMMIT).
    offered: AtomicBool,
    /// Set by the handler once that use case succeeded: its transaction stored the record.
    stored: AtomicBool,
}

/// The handler's side of an idempotent request (none without an `Idempotency-Key`): the
/// record statement for its use case's transaction.
#[derive(Debug, Clone, Default)]
pub struct Idempotent(Option<Arc<Pending>>);

/// The statement storing an answer, made from a use case's outcome.
pub type RecordFn<O> = Box<dyn Fn(&O) -> Vec<(&'static str, Sql)> + Send + Sync>;

impl Idempotent {
    /// The record statement for a use case whose answer `reply` builds from its outcome (None
    /// without a key). Pass it as the use case's record (`.as_deref()`).
    pub fn record<O: 'static>(
        &self,
        reply: impl Fn(&O) -> Reply + Send + Sync + 'static,
    ) -> Option<RecordFn<O>> {
        let pending = self.0.clone()?;
        Some(Box::new(move |outcome: &O| {
            pending.offered.store(true, Ordering::Release);
            let reply = reply(outcome);
            let stored = StoredResponse {
                status: reply.status.as_u16(),
                body: String::from_utf8_lossy(&reply.body).into_owned(),
                headers: reply.headers(),
            };
            vec![(IDEMPOTENCY_RECORD, insert(&pending, &stored, false))]
        }))
    }

    /// Notes how the use case ended: on success, a record it made was committed with it.
    pub fn settle<T, E>(&self, result: &Result<T, E>) {
        if let (Some(pending), Ok(_)) = (&self.0, result) {
            let offered = pending.offered.load(Ordering::Acquire);
            pending.stored.store(offered, Ordering::Release);
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Idempotent(parts.extensions.get::<Arc<Pending>>().cloned()))
    }
}

/// Holds a key in flight in its app until dropped.
struct InFlight(KeysInFlight, (String, String));

impl InFlight {
    fn take(keys: &KeysInFlight, key: &str, subject: &str) -> Option<Self> {
        let entry = (key.to_owned(), subject.to_owned());
        let inserted = keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.clone());
        // Built only after the lock is released: dropping one takes the lock.
        if inserted {
            Some(InFlight(keys.clone(), entry))
        } else {
            None
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

fn in_progress() -> ApiError {
    ApiError::Conflict {
        message: "a request with this Idempotency-Key is still in progress".into(),
        field: Some("Idempotency-Key".into()),
        current_version: None,
    }
}

fn reused() -> ApiError {
    ApiError::unprocessable(
        "this Idempotency-Key was already used with another request",
        Some("Idempotency-Key"),
    )
}

/// The middleware (on every route of `/api/v1`; only unsafe methods with the header are
/// affected).
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match handle(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Routes whose answers hold bearer tokens and have no token-free record: they refuse the key.
fn issues_tokens(path: &str) -> bool {
    path.ends_with("/sessions") || path.ends_with("/sessions/refresh")
}

/// A registration's answer: stored without tokens, replayed with fresh ones.
fn is_registration(method: &Method, path: &str) -> bool {
    method == Method::POST && path.ends_with("/accounts")
}

async fn handle(state: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    if issues_tokens(request.uri().path()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key is not accepted on routes that issue tokens; repeat the request \
             without it",
            Some("Idempotency-Key"),
        ));
    }
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::bad_request(
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
                Some("Idempotency-Key"),
            )
        })?
        .to_owned();

    let (mut parts, body) = request.into_parts();
    let subject = match crate::authz::bearer(&parts) {
        Ok(Some(token)) => state
            .tokens()
            .verify(token, TokenKind::Access)
            .map(|c| c.sub)
            .unwrap_or_else(|_| ANONYMOUS.to_owned()),
        _ => ANONYMOUS.to_owned(),
    };
    let limit = state.settings().max_body_bytes;
    let bytes = crate::extract::read_body(body, limit).await?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fingerprint = fingerprint(state.fingerprint_key(), &parts.method, &path, &bytes);
    let registration = is_registration(&parts.method, parts.uri.path());

    if let Some(stored) = lookup(state.store(), &key, &subject).await? {
        return replay(&state, stored, &fingerprint, registration);
    }
    let Some(guard) = InFlight::take(state.keys_in_flight(), &key, &subject) else {
        return Err(in_progress());
    };
    let pending = Arc::new(Pending {
        key,
        subject,
        fingerprint,
        offered: AtomicBool::new(false),
        stored: AtomicBool::new(false),
    });
    parts.extensions.insert(pending.clone());
    let request = Request::from_parts(parts, Body::from(bytes));
    // The command runs in its own task: a client hanging up cannot cut it off half-way.
    let task = tokio::spawn(run(state.clone(), pending.clone(), request, next, guard));
    match task.await.map_err(ApiError::internal)? {
        Ran::Answered(response) => Ok(response),
        // Another process committed this key first: answer with its stored response.
        Ran::AnsweredElsewhere => {
            match lookup(state.store(), &pending.key, &pending.subject).await? {
                Some(stored) => replay(&state, stored, &pending.fingerprint, registration),
                None => Err(in_progress()),
            }
        }
    }
}

/// How running a keyed request ended.
enum Ran {
    /// With this answer.
    Answered(Response),
    /// Another process stored an answer for the key first: that one is the answer.
    AnsweredElsewhere,
}

#[tracing::instrument(skip_all, fields(key = %pending.key, subject = %pending.subject))]
async fn run(
    state: AppState,
    pending: Arc<Pending>,
    request: Request,
    next: Next,
    _guard: InFlight,
) -> Ran {
    let response = next.run(request).await;
    if response.extensions().get::<AnsweredMeanwhile>().is_some() {
        return Ran::AnsweredElsewhere;
    }
    if pending.stored.load(Ordering::Acquire) || response.status().is_server_error() {
        return Ran::Answered(response);
    }
    // Not stored by a use case (a rejection, or a route without one): store it on its own.
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return Ran::Answered(
                ApiError::internal(anyhow::anyhow!("reading the response: {error}"))
                    .into_response(),
            )
        }
    };
    let stored = StoredResponse::capture(parts.status, &parts.headers, &bytes);
    match insert(&pending, &stored, true).execute(state.store()).await {
        // Another process stored this key's answer meanwhile (e.g. its registration claimed the
        // e-mail this one was refused for): the first answer wins.
        Ok(0) => return Ran::AnsweredElsewhere,
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "storing an idempotent response failed"),
    }
    Ran::Answered(Response::from_parts(parts, Body::from(bytes)))
}

fn fingerprint(key: &[u8], method: &Method, path: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(method.as_str().as_bytes());
    mac.update(b" ");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A response as stored with its key.
#[derive(Debug, Clone)]
struct StoredResponse {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

impl StoredResponse {
    fn capture(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> Self {
        Self {
            status: status.as_u16(),
            body: String::from_utf8_lossy(body).into_owned(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = headers.get(*name)?.to_str().ok()?;
                    Some((name.to_string(), value.to_owned()))
                })
                .collect(),
        }
    }
}

impl IntoResponse for StoredResponse {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

/// A stored record: its fingerprint and response.
struct Stored {
    fingerprint: String,
    response: StoredResponse,
}

/// The answer to a repeat: the stored response (a registration's with fresh tokens), or 422
/// when the key came with another request.
fn replay(
    state: &AppState,
    stored: Stored,
    fingerprint: &str,
    registration: bool,
) -> Result<Response, ApiError> {
    if stored.fingerprint != fingerprint {
        return Err(reused());
    }
    let mut response = stored.response;
    if registration && response.status == StatusCode::CREATED.as_u16() {
        let record: RegisteredRecord =
            serde_json::from_str(&response.body).map_err(ApiError::internal)?;
        let tokens = application::sessions::issue(state.app(), record.account_id)?;
        let reply = Reply::json(
            StatusCode::CREATED,
            record.version,
            &record.with_tokens(tokens),
        );
        response.body = String::from_utf8_lossy(&reply.body).into_owned();
    }
    Ok(response.into_response())
}

/// The statement storing `response` for `pending`'s key; `if_absent`: a no-op when a record
/// exists (a stored rejection racing another), else a unique violation.
fn insert(pending: &Pending, response: &StoredResponse, if_absent: bool) -> Sql {
    let headers = serde_json::to_string(&response.headers).unwrap_or_else(|_| "[]".into());
    let now = Utc::now();
    let mut sql = Sql::new(
        "INSERT INTO idempotency_keys (idempotency_key, subject, request_hash, status, \
         response_body, response_headers, created_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .arg(pending.key.as_str())
    .arg(pending.subject.as_str())
    .arg(pending.fingerprint.as_str())
    .arg(i64::from(response.status))
    .arg(response.body.as_str())
    .arg(headers)
    .arg(now);
    if if_absent {
        sql.push(" ON CONFLICT DO NOTHING");
    }
    sql
}

/// Deletes the records of keys stored before `before` (expired, see the
/// `idempotency_key_ttl_secs` setting): such a key may then be used again as new. Answers how
/// many were deleted.
pub async fn expire(store: &Store, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    Sql::new("DELETE FROM idempotency_keys WHERE created_at < $1")
        .arg(before)
        .execute(store)
        .await
}

type Row = (String, Option<i32>, Option<String>, Option<String>);

async fn lookup(store: &Store, key: &str, subject: &str) -> Result<Option<Stored>, ApiError> {
    let row: Option<Row> = Sql::new(
        "SELECT request_hash, status, response_body, response_headers \
           FROM idempotency_keys WHERE idempotency_key = $1 AND subject = $2",
    )
    .arg(key)
    .arg(subject)
    .fetch_optional(store)
    .await?;
    Ok(row.and_then(|(fingerprint, status, body, headers)| {
        Some(Stored {
            fingerprint,
            response: StoredResponse {
                status: u16::try_from(status?).ok()?,
                body: body.unwrap_or_default(),
                headers: headers
                    .and_then(|h| serde_json::from_str(&h).ok())
                    .unwrap_or_default(),
            },
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_depends_on_the_key_and_on_every_part_of_the_request() {
        let one = fingerprint(b"k1", &Method::POST, "/a", b"{\"password\":\"x\"}");
        assert_eq!(
            one,
            fingerprint(b"k1", &Method::POST, "/a", b"{\"password\":\"x\"}")
        );
        assert_ne!(
            one,
            fingerprint(b"k2", &Method::POST, "/a", b"{\"password\":\"x\"}")
        );
        assert_ne!(
            one,
            fingerprint(b"k1", &Method::PUT, "/a", b"{\"password\":\"x\"}")
        );
        assert_ne!(
            one,
            fingerprint(b"k1", &Method::POST, "/b", b"{\"password\":\"x\"}")
        );
        assert_ne!(
            one,
            fingerprint(b"k1", &Method::POST, "/a", b"{\"password\":\"y\"}")
        );
    }

    #[test]
    fn only_the_session_routes_refuse_the_key() {
        assert!(issues_tokens("/api/v1/sessions"));
        assert!(issues_tokens("/sessions/refresh"));
        assert!(!issues_tokens("/api/v1/accounts"));
        assert!(is_registration(&Method::POST, "/accounts"));
        assert!(!is_registration(&Method::POST, "/accounts/x/deposits"));
    }
}
