//! The eventshop admin console at `/console`: server-rendered HTML (maud) with one small CSS
//! file and a little progressive JavaScript (the live log's Server-Sent Events), all embedded
//! in the binary — no CDN, no JavaScript build step. Served by `eventshop serve` and
//! `eventshop query-api` alike, for admins only (see [`session`]).
//!
//! Pages (the contract the browser tests hold it to is in the README's "The console"):
//! the global log with filters, keyset pagination and live updates ([`log`]); an aggregate's
//! state at any version or time beside the event that made it ([`aggregate`]); an order's saga
//! as a timeline with every event it caused ([`order`]); projections with rebuild, retry and
//! skip ([`projections`]); the audit index with CSV download ([`audit`]).
//!
//! Nothing here holds a query of its own: the pages read through the GraphQL schema in process
//! ([`query_api::QueryApi::execute_as`], for aggregate state), the log's typed reads
//! (`eventstore_config::log`), the audit read ([`query_api::audit`]) and the projectors' status
//! and dead-letter use cases; sign-in is the login use case ([`application::sessions`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod aggregate;
pub mod audit;
pub mod error;
pub mod layout;
pub mod log;
pub mod login;
pub mod order;
pub mod projections;
pub mod session;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDateTime, Utc};
use eventstore_config::{Settings, Store};

pub use error::{PageError, PageResult};

/// The console: cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    settings: Settings,
    app: application::App,
    authenticator: access::Authenticator,
    graphql: query_api::QueryApi,
    limits: access::LoginLimits,
    rebuilds: Mutex<BTreeMap<String, projections::RebuildState>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// The console over the use cases of `app`, the shared `authenticator` and the GraphQL
    /// API `graphql` (the same store).
    pub fn new(
        settings: Settings,
        app: application::App,
        authenticator: access::Authenticator,
        graphql: query_api::QueryApi,
    ) -> Self {
        let limits = access::LoginLimits::from_settings(&settings);
        Self(Arc::new(Inner {
            settings,
            app,
            authenticator,
            graphql,
            limits,
            rebuilds: Mutex::default(),
        }))
    }

    /// The console of a process without the REST API (`eventshop query-api`): the use cases
    /// it needs (sign-in, skip) over a command bus of its own, sharing `authenticator`'s keys
    /// and policy cache.
    pub fn standalone(
        settings: Settings,
        authenticator: access::Authenticator,
        graphql: query_api::QueryApi,
    ) -> anyhow::Result<Self> {
        let currency = domain::Currency::parse(&settings.default_currency).map_err(|e| {
            anyhow::anyhow!(
                "invalid setting default_currency {:?}: {e}",
                settings.default_currency
            )
        })?;
        let store = graphql.store().clone();
        let app = application::App::new(
            eventstore_config::CommandBus::new(store, &settings),
            access::Passwords::from_settings(&settings),
            authenticator.tokens().clone(),
            authenticator.cache().clone(),
            currency,
        );
        Ok(Self::new(settings, app, authenticator, graphql))
    }

    /// The routes under `/console`, ready to merge beside the APIs.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/console", get(index))
            .route("/console/", get(index))
            .route("/console/login", get(login::form).post(login::submit))
            .route("/console/logout", post(login::logout))
            .route("/console/log", get(log::page))
            .route("/console/log/live", get(log::live))
            .route(
                "/console/aggregates/{aggregate_type}/{id}",
                get(aggregate::page),
            )
            .route("/console/orders/{id}", get(order::page))
            .route("/console/projections", get(projections::page))
            .route(
                "/console/projections/{name}/rebuild",
                post(projections::rebuild),
            )
            .route(
                "/console/projections/{name}/retry",
                post(projections::retry),
            )
            .route("/console/projections/{name}/skip", post(projections::skip))
            .route("/console/audit", get(audit::page))
            .route("/console/audit.csv", get(audit::csv))
            .route("/console/assets/console.css", get(css))
            .route("/console/assets/console.js", get(js))
            .route("/console/{*rest}", get(not_found).post(not_found))
            .with_state(self.clone())
    }

    pub(crate) fn store(&self) -> &Store {
        self.0.app.store()
    }

    /// The e-mail of account `subject` as its registration's public view shows it
    /// (`[erased]` once erased), or the id if it cannot be read.
    pub(crate) async fn email_of(&self, subject: &str) -> String {
        let registered = self.store().aggregate_page("account", subject, 0, 1).await;
        registered
            .ok()
            .and_then(|events| events.into_iter().next())
            .and_then(|event| event.public_view().ok())
            .and_then(|view| view["data"]["email"].as_str().map(str::to_owned))
            .unwrap_or_else(|| subject.to_owned())
    }
}

/// `GET /console`: the log when signed in, else the login page.
async fn index(
    axum::extract::State(console): axum::extract::State<Console>,
    headers: axum::http::HeaderMap,
) -> Response {
    match console.signed_in(&headers).await {
        Some(_) => Redirect::to("/console/log").into_response(),
        None => Redirect::to("/console/login").into_response(),
    }
}

async fn not_found() -> PageError {
    PageError::not_found("There is no such console page.")
}

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// Longest text accepted in a filter or form field.
const MAX_TEXT: usize = 200;

/// A query or form parameter: `None` when absent or blank; 400 when longer than [`MAX_TEXT`].
pub(crate) fn text(
    parameters: &std::collections::HashMap<String, String>,
    name: &str,
) -> PageResult<Option<String>> {
    match parameters.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > MAX_TEXT => Err(PageError::bad_request(format!(
            "`{name}` is longer than {MAX_TEXT} characters"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// A time parameter: RFC 3339, or the `datetime-local` form `YYYY-MM-DDTHH:MM[:SS]` read as UTC.
pub(crate) fn time(
    parameters: &std::collections::HashMap<String, String>,
    name: &str,
) -> PageResult<Option<DateTime<Utc>>> {
    let Some(value) = text(parameters, name)? else {
        return Ok(None);
    };
    parse_time(&value).map(Some).ok_or_else(|| {
        PageError::bad_request(format!(
            "`{name}` is not a time: use RFC 3339 (2026-12-01T10:00:00Z) or YYYY-MM-DDTHH:MM (UTC)"
        ))
    })
}

/// RFC 3339, or `YYYY-MM-DDTHH:MM[:SS[.f]]` as UTC.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
    .map(|t| t.and_utc())
}

/// A positive integer parameter (a position or a version).
pub(crate) fn number(
    parameters: &std::collections::HashMap<String, String>,
    name: &str,
) -> PageResult<Option<i64>> {
    let Some(value) = text(parameters, name)? else {
        return Ok(None);
    };
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| PageError::bad_request(format!("`{name}` must be a positive integer")))
}

/// The query parameters of a request, or a 400 page.
pub(crate) type Parameters = std::collections::HashMap<String, String>;

pub(crate) fn parameters(
    query: Result<axum::extract::Query<Parameters>, axum::extract::rejection::QueryRejection>,
) -> PageResult<Parameters> {
    query
        .map(|q| q.0)
        .map_err(|e| PageError::bad_request(format!("the URL parameters do not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_rfc_3339_or_a_datetime_local_value_in_utc() {
        assert_eq!(
            parse_time("2026-12-01T10:30").unwrap().to_rfc3339(),
            "2026-12-01T10:30:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-01T10:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T09:30:00+00:00"
        );
        assert!(parse_time("yesterday").is_none());
    }
}
