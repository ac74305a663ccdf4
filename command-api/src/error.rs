//! The API's one error type and its JSON body `{"errors":[{"message","field"}]}`.

use application::{AppError, DomainError, Kind, Rejected};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use eventstore_config::{CommandError, ReadError};
use serde::Serialize;
use utoipa::ToSchema;

/// The name of the statement storing an idempotent request's answer in its use case's
/// transaction.
pub const IDEMPOTENCY_RECORD: &str = "idempotency record";

/// Marks the response of [`ApiError::AlreadyAnswered`] for the idempotency middleware.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredMeanwhile;

/// One problem with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorItem {
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault (a JSON path such as `items[0].quantity`, a path parameter,
    /// or a header name), when there is one.
    pub field: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// At least one problem.
    pub errors: Vec<ErrorItem>,
}

/// Why a request was not carried out. Each variant names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not exactly one JSON value, a path parameter or header is malformed.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// Where.
        field: Option<String>,
    },
    /// 401: no token, an invalid or expired token, a token of a deleted account, or wrong
    /// credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller's policies do not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the addressed aggregate does not exist.
    #[error("{message}")]
    NotFound {
        /// What is missing.
        message: String,
        /// The field naming it.
        field: Option<String>,
    },
    /// 405: the route exists, but not for this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the command clashes with the aggregate's state, a stale `If-Match`, a conflict that
    /// outlived the retries, or an `Idempotency-Key` whose first request is still running.
    #[error("{message}")]
    Conflict {
        /// What clashed.
        message: String,
        /// The field at fault, when there is one (e.g. a taken e-mail).
        field: Option<String>,
        /// The aggregate's current version, for a stale `If-Match`.
        current_version: Option<u64>,
    },
    /// 408: the body did not arrive within `request_body_timeout_secs`.
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: the body is larger than `max_body_bytes`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// 415: a body came with a `Content-Type` other than JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed JSON that is not a valid command (unknown or missing field, wrong type,
    /// out-of-range value), a domain rejection of kind unprocessable, or an `Idempotency-Key`
    /// reused with another request.
    #[error("{message}")]
    Unprocessable {
        /// What is wrong.
        message: String,
        /// Where.
        field: Option<String>,
    },
    /// 429: too many attempts (logins); `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// What is limited.
        message: String,
        /// The field whose value is limited (`email`), when there is one.
        field: Option<String>,
        /// Seconds to wait (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// 503: the server is too busy for this request now (password hashing); `Retry-After` says
    /// when to try again.
    #[error("{message}")]
    ServiceUnavailable {
        /// What is busy.
        message: String,
        /// Seconds to wait (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// 409 while answering: another request with the same `Idempotency-Key` committed first
    /// (in another process); the idempotency middleware answers with that request's stored
    /// response instead.
    #[error("a request with this Idempotency-Key was answered meanwhile")]
    AlreadyAnswered,
    /// 500: the store or another part of the infrastructure failed. The cause is logged; the
    /// answer says nothing more.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad_request(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::BadRequest {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// A 422 naming `field`.
    pub fn unprocessable(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::Unprocessable {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// A 404 naming `field`.
    pub fn not_found(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::NotFound {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// A 500 with `error` as its (logged) cause.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::failed(error.into())
    }

    /// A failure of the infrastructure: 503 with `Retry-After` when it is one that passes
    /// (every database connection busy for the pool's acquire timeout, the pool shutting down, a
    /// connection that could not be opened), so that clients retry instead of treating it as a
    /// server bug; 500 otherwise. The cause is logged either way, never sent.
    pub fn failed(cause: anyhow::Error) -> Self {
        let passing = cause.chain().any(|e| {
            matches!(
                e.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
            )
        });
        if passing {
            tracing::warn!(
                error = format!("{cause:#}"),
                "the database is unavailable for now"
            );
            Self::ServiceUnavailable {
                message: "the database is busy or unreachable; try again".to_owned(),
                retry_after_secs: 1,
            }
        } else {
            Self::Internal(cause)
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::AlreadyAnswered => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::BadRequest { field, .. }
            | ApiError::Conflict { field, .. }
            | ApiError::NotFound { field, .. }
            | ApiError::Unprocessable { field, .. }
            | ApiError::TooManyRequests { field, .. } => field.clone(),
            ApiError::UnsupportedMediaType(_) => Some("Content-Type".to_owned()),
            ApiError::AlreadyAnswered => Some("Idempotency-Key".to_owned()),
            _ => None,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            errors: vec![ErrorItem {
                message: self.to_string(),
                field: self.field(),
            }],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let ApiError::Conflict {
            current_version: Some(version),
            ..
        } = &self
        {
            if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
                response
                    .headers_mut()
                    .insert(axum::http::header::ETAG, value);
            }
        }
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        }
        | ApiError::ServiceUnavailable {
            retry_after_secs, ..
        } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
        }
        if let ApiError::AlreadyAnswered = &self {
            response.extensions_mut().insert(AnsweredMeanwhile);
        }
        if let ApiError::Unauthorized(_) = &self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        ApiError::internal(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(error)
    }
}

impl<E: DomainError> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        ApiError::from(AppError::from(error))
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Rejected(rejected) => {
                let Rejected {
                    kind,
                    message,
                    field,
                    current_version,
                    retry_after_secs,
                } = rejected;
                match kind {
                    Kind::NotFound => ApiError::NotFound { message, field },
                    Kind::Conflict => ApiError::Conflict {
                        message,
                        field,
                        current_version,
                    },
                    Kind::Unprocessable => ApiError::Unprocessable { message, field },
                    Kind::Forbidden => ApiError::Forbidden(message),
                    Kind::Unauthorized => ApiError::Unauthorized(message),
                    Kind::TooManyRequests => ApiError::TooManyRequests {
                        message,
                        field,
                        retry_after_secs: retry_after_secs.unwrap_or(1),
                    },
                }
            }
            AppError::Contended { attempts } => ApiError::Conflict {
                message: format!(
                    "the resource kept changing concurrently; gave up after {attempts} attempts"
                ),
                field: None,
                current_version: None,
            },
            AppError::Duplicate(IDEMPOTENCY_RECORD) => ApiError::AlreadyAnswered,
            AppError::Duplicate(name) => {
                ApiError::internal(anyhow::anyhow!("the statement {name} hit a unique key"))
            }
            AppError::Busy {
                message,
                retry_after_secs,
            } => ApiError::ServiceUnavailable {
                message,
                retry_after_secs,
            },
            AppError::Failed(cause) => ApiError::failed(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_pool_timeout_deep_in_a_failure_when_answered_then_it_is_a_503_with_retry_after() {
        for passing in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            let cause = anyhow::Error::from(passing).context("the event store failed");
            let response = ApiError::from(AppError::Failed(cause)).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        }
    }

    #[test]
    fn given_any_other_failure_when_answered_then_it_is_a_500_that_says_nothing_more() {
        for cause in [
            anyhow::Error::from(sqlx::Error::RowNotFound),
            anyhow::anyhow!("a bug"),
        ] {
            let error = ApiError::internal(cause);
            assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(error.to_string(), "internal error");
        }
    }
}
