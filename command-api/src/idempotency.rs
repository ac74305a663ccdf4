//! `Idempotency-Key`: a request repeated with the same key (by the same caller) gets the first
//! response back and changes nothing; the same key with another request is a 422.
//!
//! The key is claimed in the `idempotency_keys` table before the command runs (an insert that
//! only one concurrent request can win; a second one meanwhile gets 409 "in progress"). The
//! command then runs in its own task, so a client hanging up cannot leave the claim behind, and
//! the response (status, body and the headers that matter) is stored with the claim. A 5xx
//! releases the claim so the request can be retried. A claim left by a process that died while
//! running the command is taken over after [`ABANDONED_AFTER_SECS`].

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eventstore_config::Store;
use sha2::{Digest, Sha256};

use crate::auth::TokenKind;
use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a response that is a replay of the first one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// An unfinished claim older than this is considered abandoned by a dead process.
pub const ABANDONED_AFTER_SECS: i64 = 60;
/// Response headers kept with the stored response.
const KEPT_HEADERS: [&str; 3] = ["content-type", "etag", "location"];

/// The caller a key belongs to when no valid access token came with the request.
const ANONYMOUS: &str = "anonymous";

/// The middleware (on every route of `/api/v1`; only unsafe methods with the header are
/// affected).
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match handle(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
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

    let (parts, body) = request.into_parts();
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
    let hash = request_hash(
        &parts.method,
        parts.uri.path_and_query().map(|p| p.as_str()),
        &bytes,
    );

    let store = state.store().clone();
    for _ in 0..3 {
        match claim(&store, &key, &subject, &hash).await? {
            Claim::Won => {
                let request = Request::from_parts(parts, Body::from(bytes));
                let task = tokio::spawn(run_and_store(
                    store.clone(),
                    key.clone(),
                    subject.clone(),
                    request,
                    next,
                ));
                return match task.await {
                    Ok(response) => Ok(response),
                    Err(join_error) => {
                        release(&store, &key, &subject).await;
                        Err(ApiError::internal(join_error))
                    }
                };
            }
            Claim::Stored(stored) if stored.hash != hash => {
                return Err(ApiError::unprocessable(
                    "this Idempotency-Key was already used with another request",
                    Some("Idempotency-Key"),
                ))
            }
            Claim::Stored(stored) => match stored.response {
                Some(response) => return Ok(response.into_response()),
                None => {
                    return Err(ApiError::Conflict {
                        message: "a request with this Idempotency-Key is still in progress".into(),
                        field: Some("Idempotency-Key".into()),
                        current_version: None,
                    })
                }
            },
            Claim::Vanished => continue,
        }
    }
    Err(ApiError::Conflict {
        message: "a request with this Idempotency-Key is still in progress".into(),
        field: Some("Idempotency-Key".into()),
        current_version: None,
    })
}

#[tracing::instrument(skip_all, fields(key = %key, subject = %subject))]
async fn run_and_store(
    store: Store,
    key: String,
    subject: String,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release(&store, &key, &subject).await;
            return ApiError::internal(anyhow::anyhow!("reading the response: {error}"))
                .into_response();
        }
    };
    if parts.status.is_server_error() {
        release(&store, &key, &subject).await;
    } else {
        let stored = StoredResponse::capture(parts.status, &parts.headers, &bytes);
        if let Err(error) = complete(&store, &key, &subject, &stored).await {
            tracing::error!(error = %error, "storing an idempotent response failed");
            release(&store, &key, &subject).await;
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn request_hash(method: &Method, path: Option<&str>, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(path.unwrap_or("").as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
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

struct Existing {
    hash: String,
    response: Option<StoredResponse>,
}

enum Claim {
    Won,
    Stored(Existing),
    /// The row was released between the failed insert and the read: try again.
    Vanished,
}

type Row = (String, Option<i32>, Option<String>, Option<String>, bool);

async fn claim(store: &Store, key: &str, subject: &str, hash: &str) -> Result<Claim, ApiError> {
    let (inserted, row): (u64, Option<Row>) = match store {
        Store::Postgres(pool) => {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (idempotency_key, subject, request_hash) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(subject)
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected();
            let row = if inserted == 0 {
                sqlx::query_as(
                    "SELECT request_hash, status, response_body, response_headers, \
                            status IS NULL AND created_at < now() - make_interval(secs => $3) \
                       FROM idempotency_keys WHERE idempotency_key = $1 AND subject = $2",
                )
                .bind(key)
                .bind(subject)
                .bind(ABANDONED_AFTER_SECS as f64)
                .fetch_optional(pool)
                .await?
            } else {
                None
            };
            (inserted, row)
        }
        Store::Sqlite(pool) => {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (idempotency_key, subject, request_hash) \
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(subject)
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected();
            let row = if inserted == 0 {
                sqlx::query_as(
                    "SELECT request_hash, status, response_body, response_headers, \
                            status IS NULL AND created_at < \
                              strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?3 || ' seconds') \
                       FROM idempotency_keys WHERE idempotency_key = ?1 AND subject = ?2",
                )
                .bind(key)
                .bind(subject)
                .bind(ABANDONED_AFTER_SECS)
                .fetch_optional(pool)
                .await?
            } else {
                None
            };
            (inserted, row)
        }
    };
    if inserted == 1 {
        return Ok(Claim::Won);
    }
    let Some((stored_hash, status, body, headers, abandoned)) = row else {
        return Ok(Claim::Vanished);
    };
    if abandoned {
        // A dead process's claim: drop it and claim again.
        release(store, key, subject).await;
        return Ok(Claim::Vanished);
    }
    let response = status.map(|status| StoredResponse {
        status: status as u16,
        body: body.unwrap_or_default(),
        headers: headers
            .and_then(|h| serde_json::from_str(&h).ok())
            .unwrap_or_default(),
    });
    Ok(Claim::Stored(Existing {
        hash: stored_hash,
        response,
    }))
}

async fn complete(
    store: &Store,
    key: &str,
    subject: &str,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    let headers = serde_json::to_string(&response.headers).unwrap_or_else(|_| "[]".into());
    match store {
        Store::Postgres(pool) => {
            sqlx::query(
                "UPDATE idempotency_keys SET status = $3, response_body = $4, \
                        response_headers = $5, completed_at = now() \
                  WHERE idempotency_key = $1 AND subject = $2",
            )
            .bind(key)
            .bind(subject)
            .bind(i32::from(response.status))
            .bind(&response.body)
            .bind(headers)
            .execute(pool)
            .await?;
        }
        Store::Sqlite(pool) => {
            sqlx::query(
                "UPDATE idempotency_keys SET status = ?3, response_body = ?4, \
                        response_headers = ?5, \
                        completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                  WHERE idempotency_key = ?1 AND subject = ?2",
            )
            .bind(key)
            .bind(subject)
            .bind(i32::from(response.status))
            .bind(&response.body)
            .bind(headers)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Drops an unfinished claim so the request may be retried (best effort: logged on failure).
async fn release(store: &Store, key: &str, subject: &str) {
    let result = match store {
        Store::Postgres(pool) => sqlx::query(
            "DELETE FROM idempotency_keys \
                  WHERE idempotency_key = $1 AND subject = $2 AND status IS NULL",
        )
        .bind(key)
        .bind(subject)
        .execute(pool)
        .await
        .map(|_| ()),
        Store::Sqlite(pool) => sqlx::query(
            "DELETE FROM idempotency_keys \
                  WHERE idempotency_key = ?1 AND subject = ?2 AND status IS NULL",
        )
        .bind(key)
        .bind(subject)
        .execute(pool)
        .await
        .map(|_| ()),
    };
    if let Err(error) = result {
        tracing::error!(%error, "releasing an idempotency key failed");
    }
}
