//! `GET /console/log`: the global log, newest first, 50 events a page (keyset pagination on the
//! global position: `before`), filtered by aggregate type and id, event type, actor,
//! correlation id and a time range ([`eventstore_config::LogFilter`], each filter served by an
//! index); and `GET /console/log/live`: the events after `after` that match the same filters,
//! as Server-Sent Events (one `tr.event` row each), which the page's script prepends. The live
//! view reads in commit-safe order from a checkpoint (`after` and the SSE ids are
//! `<transaction id>.<position>`), so an event whose transaction took a lower position but
//! committed later still arrives live.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use eventstore_config::{Checkpoint, LogFilter};
use futures::{Stream, StreamExt};
use maud::html;

use crate::error::{PageError, PageResult};
use crate::layout::{self, Nav};
use crate::session::Admin;
use crate::{number, parameters, text, time, Console, Parameters};

/// Events on a page.
pub const PAGE: i64 = 50;

/// The filter parameters, in form order.
const FILTERS: [(&str, &str); 7] = [
    ("aggregate_type", "Aggregate type"),
    ("aggregate_id", "Aggregate id"),
    ("event_type", "Event type"),
    ("actor", "Actor"),
    ("correlation_id", "Correlation id"),
    ("from", "From (UTC)"),
    ("to", "To (UTC)"),
];

/// The log filter of a request's parameters, or a 400 page.
pub fn filter(parameters: &Parameters) -> PageResult<LogFilter> {
    let aggregate_type = match text(parameters, "aggregate_type")? {
        Some(t) => Some(
            query_api::query::aggregate_type(&t)
                .ok_or_else(|| {
                    PageError::bad_request(format!(
                        "unknown aggregate type {t:?}: use account, wallet, product, order, \
                         policy_set or projection"
                    ))
                })?
                .to_owned(),
        ),
        None => None,
    };
    let filter = LogFilter {
        aggregate_type,
        aggregate_id: text(parameters, "aggregate_id")?,
        event_type: text(parameters, "event_type")?,
        actor: text(parameters, "actor")?,
        correlation_id: text(parameters, "correlation_id")?,
        from: time(parameters, "from")?,
        to: time(parameters, "to")?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(PageError::bad_request("`from` is after `to`"));
        }
    }
    Ok(filter)
}

/// The filter parameters of a request that are set, as a query string (without `?`).
fn filter_query(parameters: &Parameters) -> String {
    FILTERS
        .iter()
        .filter_map(|(name, _)| {
            let value = parameters.get(*name)?.trim();
            (!value.is_empty()).then(|| format!("{name}={}", layout::encode(value)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /console/log`.
pub async fn page(
    State(console): State<Console>,
    admin: Admin,
    query: Result<Query<Parameters>, QueryRejection>,
) -> PageResult<Response> {
    let parameters = parameters(query)?;
    let filter = filter(&parameters)?;
    let before = number(&parameters, "before")?;
    let horizon = console
        .store()
        .live_start()
        .await
        .map_err(PageError::internal)?;
    let events = console
        .store()
        .log_page(&filter, before, PAGE)
        .await
        .map_err(PageError::internal)?;
    let filters = filter_query(&parameters);
    let joiner = if filters.is_empty() { "" } else { "&" };
    let older = (events.len() as i64 == PAGE)
        .then(|| events.last().map(|e| e.position))
        .flatten()
        .map(|last| format!("/console/log?{filters}{joiner}before={last}"));
    // Live only on the first page: older pages stay as they are. The live view starts at the
    // live start taken before the page was read ([`eventstore_config::Store::live_start`]), so an event still being committed
    // while the page is read arrives live (the browser skips the rows it already shows).
    let live = before.is_none().then(|| {
        format!(
            "/console/log/live?{filters}{joiner}after={}",
            resume_token(horizon)
        )
    });
    let body = html! {
        h1 { "Event log" }
        form #log-filters .filters method="get" action="/console/log" {
            @for (name, label) in FILTERS {
                label {
                    span { (label) }
                    @let value = parameters.get(name).map(|v| v.trim()).unwrap_or("");
                    @if name == "from" || name == "to" {
                        input type="text" name=(name) value=(value) placeholder="YYYY-MM-DDTHH:MM";
                    } @else {
                        input type="text" name=(name) value=(value);
                    }
                }
            }
            div.actions {
                button #apply-filters type="submit" { "Apply" }
                a.button.secondary href="/console/log" { "Clear" }
            }
        }
        p.status {
            @if let Some(live) = &live {
                span #live .badge.live data-src=(live) { "live" }
                " New events appear at the top."
            } @else {
                "Older events (not live). " a href={ "/console/log?" (filters) } { "Back to the newest" }
            }
        }
        (layout::events_table("events", &events))
        @if let Some(older) = older {
            p.pager { a #older .button href=(older) { "Older →" } }
        }
    };
    Ok(layout::page("Log", &admin, Nav::Log, body).into_response())
}

/// How often the live view looks for new events.
const LIVE_POLL: Duration = Duration::from_millis(500);

/// `GET /console/log/live?<filters>&after=<resume token or position>`: Server-Sent Events, one
/// `row` event per new matching event (`id`: its resume token, so a reconnecting browser resumes
/// after it; without `after`: from the live start, [`eventstore_config::Store::live_start`]).
pub async fn live(
    State(console): State<Console>,
    _admin: Admin,
    headers: HeaderMap,
    query: Result<Query<Parameters>, QueryRejection>,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let parameters = parameters(query)?;
    let filter = filter(&parameters)?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_resume_token);
    let after = match resumed {
        Some(checkpoint) => checkpoint,
        None => match parameters.get("after").map(|v| v.trim()) {
            Some(token) if !token.is_empty() => match parse_resume_token(token) {
                Some(checkpoint) => checkpoint,
                // A bare position (an older page's link): that event's checkpoint.
                None => match token.parse::<i64>() {
                    Ok(position) if position >= 0 => console
                        .store()
                        .checkpoint_at(position)
                        .await
                        .map_err(PageError::internal)?,
                    _ => {
                        return Err(PageError::bad_request(
                            "`after` must be a position or a live view's resume token",
                        ))
                    }
                },
            },
            _ => console
                .store()
                .live_start()
                .await
                .map_err(PageError::internal)?,
        },
    };
    let store = console.store().clone();
    let stream = futures::stream::unfold(
        (store, filter, after, Vec::<Event>::new()),
        |(store, filter, mut after, mut pending)| async move {
            loop {
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (store, filter, after, pending)));
                }
                match store.log_after(&filter, after, PAGE).await {
                    Ok(events) if !events.is_empty() => {
                        after = events.last().map(|e| e.checkpoint()).unwrap_or(after);
                        // Popped from the end: oldest first.
                        pending = events
                            .iter()
                            .rev()
                            .map(|e| {
                                Event::default()
                                    .event("row")
                                    .id(resume_token(e.checkpoint()))
                                    .data(layout::event_row(e).into_string().replace('\n', "&#10;"))
                            })
                            .collect();
                    }
                    Ok(_) => tokio::time::sleep(LIVE_POLL).await,
                    Err(error) => {
                        tracing::warn!(%error, "console: the live log's read failed");
                        tokio::time::sleep(LIVE_POLL * 4).await;
                    }
                }
            }
        },
    );
    // A stream ends after a while, and when the server shuts down (a graceful drain waits for
    // every open request): the browser reconnects a second later, resuming after the last row
    // it got (`Last-Event-ID`); rows it already shows are not added twice.
    let end = async {
        tokio::select! {
            () = tokio::time::sleep(LIVE_STREAM_LIFETIME) => {}
            () = web::shutdown_signal() => {}
        }
    };
    let first = futures::stream::once(async {
        Ok(Event::default()
            .retry(Duration::from_secs(1))
            .comment("live"))
    });
    let stream = first.chain(stream).take_until(end);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A live view's place in the log as text (`<transaction id>.<position>`): the SSE event id a
/// reconnecting browser sends back as `Last-Event-ID`.
fn resume_token(checkpoint: Checkpoint) -> String {
    format!("{}.{}", checkpoint.transaction_id, checkpoint.position)
}

/// The checkpoint of a [`resume_token`] (`None`: not one).
fn parse_resume_token(token: &str) -> Option<Checkpoint> {
    let (transaction_id, position) = token.trim().split_once('.')?;
    Some(Checkpoint {
        transaction_id: transaction_id.parse().ok()?,
        position: position.parse().ok().filter(|p: &i64| *p >= 0)?,
    })
}

/// How long one live stream stays open before the browser is asked to reconnect.
const LIVE_STREAM_LIFETIME: Duration = Duration::from_secs(30);
