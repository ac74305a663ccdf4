//! `GET /console/projections`: every projection's position, lag, state, owner and parked
//! events ([`projectors::statuses`]); a rebuild button per projection (a blue/green
//! [`projectors::rebuild`] run in the background of this process, its progress shown in
//! `#rebuild-status`, the page refreshing itself while one runs), and retry/skip forms for the
//! parked events ([`projectors::dead_letters`]). Every form carries the session's CSRF token.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use projectors::dead_letters::{self, DeadLetterError};

use crate::error::{PageError, PageResult};
use crate::layout::{self, Nav};
use crate::session::Admin;
use crate::{Console, Parameters};

/// A rebuild started from the console.
#[derive(Debug, Clone)]
pub enum RebuildState {
    /// Running since then.
    Running(DateTime<Utc>),
    /// Finished: events replayed, when.
    Finished(u64, DateTime<Utc>),
    /// Failed: why, when.
    Failed(String, DateTime<Utc>),
}

impl Console {
    fn rebuilds(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, RebuildState>> {
        self.0
            .rebuilds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn csrf_input(admin: &Admin) -> Markup {
    html! { input type="hidden" name="csrf" value=(admin.csrf); }
}

/// `GET /console/projections`.
pub async fn page(State(console): State<Console>, admin: Admin) -> PageResult<Response> {
    let statuses = projectors::statuses(console.store())
        .await
        .map_err(|e| PageError::internal(format!("{e:#}")))?;
    // A projection split into segments also shows one row per segment.
    let mut segments = HashMap::new();
    for s in &statuses {
        let rows = projectors::status::segment_statuses(console.store(), &s.name)
            .await
            .map_err(|e| PageError::internal(format!("{e:#}")))?;
        if rows.len() > 1 {
            segments.insert(s.name.clone(), rows);
        }
    }
    let parked = dead_letters::list(console.store(), None)
        .await
        .map_err(|e| PageError::internal(format!("{e:#}")))?;
    let rebuilds = console.rebuilds().clone();
    let running = rebuilds
        .values()
        .any(|r| matches!(r, RebuildState::Running(_)));
    let mut followers = dead_letters::followers();
    followers.retain(|f| parked.iter().any(|d| d.projection == *f));
    let body = html! {
        h1 { "Projections" }
        @if !rebuilds.is_empty() {
            // While a rebuild runs, the script reloads the page every second.
            section.card #rebuild-status data-refresh=[running.then_some("1000")] {
                h2 { "Rebuilds" }
                ul {
                    @for (name, state) in &rebuilds {
                        li data-name=(name) {
                            strong { (name) } ": "
                            @match state {
                                RebuildState::Running(at) => {
                                    span.badge.running { "running" } " since " (layout::time(at))
                                }
                                RebuildState::Finished(events, at) => {
                                    span.badge.ok { "finished" } " at " (layout::time(at)) " (" (events) " events replayed)"
                                }
                                RebuildState::Failed(why, at) => {
                                    span.badge.error { "failed" } " at " (layout::time(at)) ": " (why)
                                }
                            }
                        }
                    }
                }
            }
        }
        table.data #projections {
            thead { tr {
                th { "Name" } th { "Version" } th { "Position" } th { "Lag" } th { "State" } th { "Owner" }
                th { "Dead letters" } th {}
            } }
            tbody {
                @for s in &statuses {
                    tr.projection data-name=(s.name) {
                        td.name { (s.name) }
                        td.version { "v" (s.version) }
                        td.position { (s.position) }
                        td.lag {
                            (s.lag_events)
                            @if let Some(secs) = s.lag_seconds { span.muted { " (" (format!("{secs:.1}")) " s)" } }
                        }
                        td.state {
                            @let state = s.state_text();
                            span class={ "badge state-" (s.state) } { (state) }
                            @if let Some(error) = &s.last_error { div.error { (error) } }
                        }
                        td.owner { (s.owner.as_deref().unwrap_or("—")) }
                        td.dead-letters { (s.dead_letters) }
                        td {
                            form.inline method="post" action={ "/console/projections/" (layout::encode(&s.name)) "/rebuild" } {
                                (csrf_input(&admin))
                                button.rebuild type="submit" { "Rebuild" }
                            }
                        }
                    }
                    @for g in segments.get(&s.name).into_iter().flatten() {
                        tr.segment data-name=(g.name) data-segment=(g.segment) {
                            td.name.muted { "↳ segment " (g.segment) " of " (g.segments) }
                            td {}
                            td.position { (g.position) }
                            td.lag {
                                (g.lag_events)
                                @if let Some(secs) = g.lag_seconds { span.muted { " (" (format!("{secs:.1}")) " s)" } }
                            }
                            td {}
                            td.owner { (g.owner.as_deref().unwrap_or("—")) }
                            td {} td {}
                        }
                    }
                }
            }
        }
        h2 { "Dead letters" }
        @if parked.is_empty() {
            p.empty #dead-letters { "No parked events." }
        } @else {
            table.data #dead-letters {
                thead { tr {
                    th { "Follower" } th { "Position" } th { "Event" } th { "Aggregate" }
                    th { "Error" } th { "Attempts" } th { "Parked" } th {}
                } }
                tbody {
                    @for d in &parked {
                        tr.dead-letter data-name=(d.projection) data-position=(d.global_position) {
                            td { (d.projection) }
                            td { (d.global_position) }
                            td { (d.event_type) }
                            td { a href=(layout::aggregate_href(&d.aggregate_type, &d.aggregate_id, None)) { (d.aggregate_type) " " (layout::short(&d.aggregate_id)) } }
                            td.error { (d.error) }
                            td { (d.attempts) }
                            td { (layout::time(&d.parked_at)) }
                            td {
                                form.inline method="post" action={ "/console/projections/" (layout::encode(&d.projection)) "/retry" } {
                                    (csrf_input(&admin))
                                    button.retry type="submit" { "Retry" }
                                }
                                form.inline method="post" action={ "/console/projections/" (layout::encode(&d.projection)) "/skip" } {
                                    (csrf_input(&admin))
                                    input type="hidden" name="position" value=(d.global_position);
                                    input type="text" name="reason" placeholder="reason" required;
                                    button.skip type="submit" { "Skip" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Projections", &admin, Nav::Projections, body).into_response())
}

/// A form's fields (none when it does not parse: then its CSRF check fails, 403).
fn form_fields(form: Result<Form<Parameters>, FormRejection>) -> HashMap<String, String> {
    form.map(|Form(f)| f).unwrap_or_default()
}

/// `POST /console/projections/{name}/rebuild` (CSRF): starts a blue/green rebuild in the
/// background and returns to the projections page, which shows its progress.
pub async fn rebuild(
    State(console): State<Console>,
    admin: Admin,
    Path(name): Path<String>,
    form: Result<Form<Parameters>, FormRejection>,
) -> PageResult<Response> {
    let fields = form_fields(form);
    admin.check_csrf(fields.get("csrf").map(String::as_str))?;
    let projection = projectors::read_models::by_name(&name)
        .ok_or_else(|| PageError::not_found(format!("unknown projection {name:?}")))?;
    {
        let mut rebuilds = console.rebuilds();
        if matches!(rebuilds.get(&name), Some(RebuildState::Running(_))) {
            return Ok(Redirect::to("/console/projections").into_response());
        }
        rebuilds.insert(name.clone(), RebuildState::Running(Utc::now()));
    }
    let store = console.store().clone();
    let task_console = console.clone();
    tracing::info!(projection = %name, actor = %admin.subject, "console: rebuild started");
    tokio::spawn(async move {
        let progress = projectors::indicatif::ProgressBar::hidden();
        let result = projectors::rebuild(&store, &[projection], 500, &progress).await;
        let state = match result {
            Ok(report) => RebuildState::Finished(report.events, Utc::now()),
            Err(error) => {
                tracing::error!(projection = %name, error = %format!("{error:#}"), "console: rebuild failed");
                RebuildState::Failed(format!("{error:#}"), Utc::now())
            }
        };
        task_console.rebuilds().insert(name, state);
    });
    Ok(Redirect::to("/console/projections").into_response())
}

fn dead_letter_error(error: DeadLetterError) -> PageError {
    match error {
        DeadLetterError::UnknownFollower(_) => PageError::not_found(error.to_string()),
        DeadLetterError::Failed(e) => PageError::internal(format!("{e:#}")),
        other => PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            other.to_string(),
        ),
    }
}

/// `POST /console/projections/{name}/retry` (CSRF): retries the follower's parked events.
pub async fn retry(
    State(console): State<Console>,
    admin: Admin,
    Path(name): Path<String>,
    form: Result<Form<Parameters>, FormRejection>,
) -> PageResult<Response> {
    let fields = form_fields(form);
    admin.check_csrf(fields.get("csrf").map(String::as_str))?;
    dead_letters::retry(console.store(), &console.0.settings, &name)
        .await
        .map_err(dead_letter_error)?;
    Ok(Redirect::to("/console/projections").into_response())
}

/// `POST /console/projections/{name}/skip` (CSRF; `position`, `reason`): skips one parked
/// event for good, recording who skipped it and why in the log.
pub async fn skip(
    State(console): State<Console>,
    admin: Admin,
    Path(name): Path<String>,
    form: Result<Form<Parameters>, FormRejection>,
) -> PageResult<Response> {
    let fields = form_fields(form);
    admin.check_csrf(fields.get("csrf").map(String::as_str))?;
    let position = crate::number(&fields, "position")?
        .ok_or_else(|| PageError::bad_request("`position` is required"))?;
    let reason = crate::text(&fields, "reason")?
        .ok_or_else(|| PageError::bad_request("a reason is required to skip an event"))?;
    dead_letters::skip(
        console.store(),
        &console.0.settings,
        &name,
        position,
        &reason,
        &admin.subject,
    )
    .await
    .map_err(dead_letter_error)?;
    Ok(Redirect::to("/console/projections").into_response())
}
