//! GraphQL errors with a machine-readable `extensions.code`.

use async_graphql::{Error, ErrorExtensions};

/// The `extensions.code` values the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No or an invalid bearer token.
    Unauthenticated,
    /// The caller's policies do not allow it.
    Forbidden,
    /// No such resource (or not at that time/version).
    NotFound,
    /// A malformed argument, or a query the limits reject.
    BadUserInput,
    /// Infrastructure failure (logged with its cause; the message is opaque).
    Internal,
    /// The server is busy (too many requests at once) or the request ran out of time:
    /// retry later (HTTP 503 with `Retry-After`).
    ServiceUnavailable,
}

impl Code {
    /// The wire form, e.g. `FORBIDDEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::Internal => "INTERNAL_SERVER_ERROR",
            Code::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

/// An error with `extensions.code`.
pub(crate) fn error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", code.as_str()))
}

pub(crate) fn forbidden(what: &str) -> Error {
    error(Code::Forbidden, format!("not allowed to read {what}"))
}

pub(crate) fn bad_input(message: impl Into<String>) -> Error {
    error(Code::BadUserInput, message)
}

/// Logs an infrastructure failure with its cause chain and answers opaquely.
pub(crate) fn internal(cause: impl std::fmt::Display) -> Error {
    if let Some(limit) = crate::budget::spent_limit() {
        // Not a failure: the request asked for more than its share.
        return bad_input(format!(
            "this request needs more than {limit} database statements: ask for less in one request"
        ));
    }
    tracing::error!(error = %cause, "query failed");
    error(Code::Internal, "internal error")
}

/// `Result` of a resolver.
pub(crate) type GqlResult<T> = async_graphql::Result<T>;

/// Maps any displayable infrastructure error to an opaque internal error.
pub(crate) trait OrInternal<T> {
    fn or_internal(self) -> GqlResult<T>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self) -> GqlResult<T> {
        self.map_err(internal)
    }
}
