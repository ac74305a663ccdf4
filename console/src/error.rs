//! The console's error pages: a user's mistake (a bad id, time or filter; an unknown aggregate)
//! is a 4xx page saying what was wrong; a failure of the server is a 500 page that says no more
//! (the cause is logged).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

/// An error answered as an HTML page.
#[derive(Debug, Clone)]
pub struct PageError {
    /// The status.
    pub status: StatusCode,
    /// What to tell the user.
    pub message: String,
}

impl PageError {
    /// An error page with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request's input is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500, logging `cause`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "console: a page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on the server (it is logged). Try again later.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = format!(
            "{} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Error")
        );
        let body = html! {
            section.card #error {
                h1 { (title) }
                p.message { (self.message) }
                p { a href="/console/log" { "Back to the log" } }
            }
        };
        (self.status, crate::layout::bare(&title, body)).into_response()
    }
}

/// The result of a page handler.
pub type PageResult<T = Response> = Result<T, PageError>;
