//! Signing in and out. Sign-in is the login use case ([`application::sessions::log_in`]: the
//! same password check, dummy hash and `AccountAuthenticated` event as `POST /sessions`), with
//! the `login_attempts_per_*` limits of the settings (the console keeps its own counters); the
//! access token it issues becomes the session cookie ([`crate::session`]).

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;

use crate::error::PageError;
use crate::session::{clear_cookie, csrf_matches, set_cookie};
use crate::{layout, Console, Parameters};

fn login_page(email: &str, error: Option<&str>) -> axum::response::Html<String> {
    layout::bare(
        "Sign in",
        html! {
            section.card.login {
                h1 { "Sign in" }
                p.hint { "The console is for admins (see the README: “The console”)." }
                @if let Some(error) = error {
                    p #login-error .error { (error) }
                }
                form method="post" action="/console/login" {
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" value=(email) required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" required;
                    button #sign-in type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// `GET /console/login`.
pub async fn form() -> Response {
    login_page("", None).into_response()
}

/// `POST /console/login` (form: `email`, `password`).
pub async fn submit(
    State(console): State<Console>,
    parts: axum::http::Extensions,
    form: Result<Form<Parameters>, FormRejection>,
) -> Response {
    // The peer's address, as the server records it for every connection.
    let address = parts
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let Ok(Form(fields)) = form else {
        return (
            StatusCode::BAD_REQUEST,
            login_page("", Some("Send the form with an e-mail and a password.")),
        )
            .into_response();
    };
    let email = fields.get("email").map(|e| e.trim()).unwrap_or("");
    let password = fields.get("password").cloned().unwrap_or_default();
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return (
            StatusCode::BAD_REQUEST,
            login_page(email, Some("Enter an e-mail and a password.")),
        )
            .into_response();
    }
    if let Err(throttled) = console.0.limits.check(email, address) {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(email, Some(&throttled.to_string())),
        )
            .into_response();
        let secs = throttled.retry_after.as_secs().max(1);
        if let Ok(value) = secs.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let origin = application::Origin::default();
    match application::sessions::log_in(&console.0.app, &origin, email, password).await {
        Ok(session) => {
            let mut response = Redirect::to("/console/log").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(
                    &session.tokens.access_token,
                    console.0.settings.access_token_ttl_secs,
                ),
            );
            response
        }
        Err(application::AppError::Rejected(rejected)) => {
            let status = match rejected.kind {
                application::Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            (status, login_page(email, Some(&rejected.message))).into_response()
        }
        Err(application::AppError::Busy { message, .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            login_page(email, Some(&message)),
        )
            .into_response(),
        Err(error) => PageError::internal(format!("{error:#}")).into_response(),
    }
}

/// `POST /console/logout` (form: `csrf`): ends the session (admins and refused accounts alike).
pub async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    form: Result<Form<Parameters>, FormRejection>,
) -> Response {
    let given = form.ok().and_then(|Form(f)| f.get("csrf").cloned());
    if let Some(signed_in) = console.signed_in(&headers).await {
        if !csrf_matches(&signed_in.csrf, given.as_deref()) {
            return PageError::new(
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            )
            .into_response();
        }
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    response
}
