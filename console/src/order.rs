//! `GET /console/orders/{id}`: an order's saga as a timeline (each step the saga took, with its
//! time and the milliseconds since the step before) and every event the order caused across
//! aggregates (its correlation id), in causal (log) order — the read of
//! [`projectors::saga::trace::order_trace`], which `eventshop orders trace` prints.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::html;

use crate::error::{PageError, PageResult};
use crate::layout::{self, Nav};
use crate::session::Admin;
use crate::Console;

/// One step of the timeline.
struct Step {
    name: String,
    saga_step: Option<String>,
    at: DateTime<Utc>,
    position: i64,
}

/// `GET /console/orders/{id}`.
pub async fn page(
    State(console): State<Console>,
    admin: Admin,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let order_id = uuid::Uuid::parse_str(&id)
        .map_err(|_| PageError::bad_request(format!("{id:?} is not an order id (a UUID)")))?;
    let trace = projectors::saga::trace::order_trace(console.store(), order_id)
        .await
        .map_err(|e| PageError::internal(format!("{e:#}")))?;
    let order_events: Vec<_> = trace
        .events
        .iter()
        .filter(|e| e.aggregate_type == "order" && e.aggregate_id == order_id.to_string())
        .collect();
    if order_events.is_empty() {
        return Err(PageError::not_found(format!(
            "there is no order {order_id}"
        )));
    }
    // The saga's steps; before the saga saw the order, the order's own events.
    let steps: Vec<Step> = if trace.steps.is_empty() {
        order_events
            .iter()
            .map(|e| Step {
                name: e.event_type.clone(),
                saga_step: None,
                at: e.recorded_at,
                position: e.position,
            })
            .collect()
    } else {
        trace
            .steps
            .iter()
            .map(|s| Step {
                name: s.event_type.clone(),
                saga_step: Some(s.step.clone()),
                at: s.recorded_at,
                position: s.position,
            })
            .collect()
    };
    let last_version = order_events.last().map(|e| e.version).unwrap_or(1);
    let body = html! {
        h1 { "Order " code { (order_id) } }
        p {
            "Saga step: "
            span.badge.state { (trace.step.as_deref().unwrap_or("not started")) }
            " · Correlation: "
            @if let Some(c) = &trace.correlation_id {
                a href=(layout::log_href("correlation_id", c)) { (c) }
            } @else { "—" }
            " · "
            a #order-aggregate href=(layout::aggregate_href("order", &order_id.to_string(), Some(last_version))) {
                "Order aggregate (state at each version) →"
            }
        }
        section.card {
            h2 { "Saga timeline" }
            ol #timeline .timeline {
                @for (i, step) in steps.iter().enumerate() {
                    @let ms = i.checked_sub(1).map(|p| (step.at - steps[p].at).num_milliseconds());
                    li.step data-position=(step.position) {
                        span.step-name { (step.name) }
                        @if let Some(s) = &step.saga_step { " " span.badge.state { (s) } }
                        span.step-time { (layout::time(&step.at)) }
                        span.step-duration { (ms.unwrap_or(0)) " ms" }
                    }
                }
            }
        }
        section.card {
            h2 { "Every event the order caused, in causal order" }
            (layout::events_table("caused-events", &trace.events))
        }
    };
    Ok(layout::page(&format!("Order {order_id}"), &admin, Nav::Log, body).into_response())
}
