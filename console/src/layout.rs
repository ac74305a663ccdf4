//! The page shell (top bar, navigation, the signed-in e-mail and the sign-out form), the 403
//! page, and the pieces several pages share: an event's table row, times, JSON and links.

use axum::response::Html;
use chrono::{DateTime, Utc};
use eventstore_config::StoredEvent;
use maud::{html, Markup, DOCTYPE};

use crate::admin::Admin;

/// The navigation entry of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The log (and the aggregate and order pages reached from it).
    Log,
    /// Projections.
    Projections,
    /// Audit.
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · eventshop console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.topbar { span.brand { "eventshop" span.sub { " console" } } }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A signed-in admin's page.
pub fn page(title: &str, admin: &Admin, active: Nav, body: Markup) -> Html<String> {
    let class = |nav: Nav| if nav == active { "active" } else { "" };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.topbar {
                        a.brand href="/console/log" { "eventshop" span.sub { " console" } }
                        nav {
                            a #nav-log class=(class(Nav::Log)) href="/console/log" { "Log" }
                            a #nav-projections class=(class(Nav::Projections)) href="/console/projections" { "Projections" }
                            a #nav-audit class=(class(Nav::Audit)) href="/console/audit" { "Audit" }
                        }
                        div.who {
                            span #whoami { (admin.email) }
                            (sign_out(&admin.csrf))
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

fn sign_out(csrf: &str) -> Markup {
    html! {
        form.inline method="post" action="/console/logout" {
            input type="hidden" name="csrf" value=(csrf);
            button #sign-out type="submit" { "Sign out" }
        }
    }
}

/// The 403 page of a signed-in account that is not an admin.
pub fn forbidden(csrf: &str) -> Html<String> {
    bare(
        "Admins only",
        html! {
            section.card {
                h1 #forbidden { "Admins only" }
                p { "The console is for admins. This account is signed in but is not an admin." }
                (sign_out(csrf))
            }
        },
    )
}

/// A time as shown (UTC, milliseconds).
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// A JSON value, pretty.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `s` encoded for a URL query value or path segment.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The aggregate page of `aggregate_type`/`id` (at `version`, if given).
pub fn aggregate_href(aggregate_type: &str, id: &str, version: Option<u64>) -> String {
    let base = format!(
        "/console/aggregates/{}/{}",
        encode(aggregate_type),
        encode(id)
    );
    match version {
        Some(v) => format!("{base}?version={v}"),
        None => base,
    }
}

/// The log page filtered by one parameter.
pub fn log_href(parameter: &str, value: &str) -> String {
    format!("/console/log?{parameter}={}", encode(value))
}

/// The `<thead>` of an events table.
pub fn events_head() -> Markup {
    html! {
        thead { tr {
            th { "#" } th { "Recorded" } th { "Event" } th { "Aggregate" }
            th { "Actor" } th { "Correlation" } th { "Payload" } th { "Metadata" }
        } }
    }
}

/// One event as a `tr.event` row (the public view of its payload, never the stored one).
pub fn event_row(event: &StoredEvent) -> Markup {
    let payload = match event.public_view() {
        Ok(view) => pretty(&view),
        Err(e) => format!("(no public view: {e})"),
    };
    let metadata = serde_json::to_value(&event.metadata).unwrap_or_default();
    let actor = event.metadata.actor.as_deref();
    let correlation = event.metadata.correlation_id.as_deref();
    html! {
        tr.event data-position=(event.position) {
            td.position { (event.position) }
            td.recorded-at { (time(&event.recorded_at)) }
            td.event-type { span.badge.type { (event.event_type) } }
            td.aggregate {
                a href=(aggregate_href(&event.aggregate_type, &event.aggregate_id, Some(event.version))) {
                    span.kind { (event.aggregate_type) } " " (short(&event.aggregate_id)) " v" (event.version)
                }
                @if event.aggregate_type == "order" {
                    " " a.saga href={ "/console/orders/" (encode(&event.aggregate_id)) } { "saga" }
                }
            }
            td.actor {
                @if let Some(actor) = actor {
                    a href=(log_href("actor", actor)) title=(actor) { (short(actor)) }
                } @else { "—" }
            }
            td.correlation {
                @if let Some(c) = correlation {
                    a href=(log_href("correlation_id", c)) title=(c) { (short(c)) }
                } @else { "—" }
            }
            td.payload { pre { (payload) } }
            td.metadata { pre { (pretty(&metadata)) } }
        }
    }
}

/// The first 8 characters of a long id (the whole id stays in links and titles).
pub fn short(id: &str) -> String {
    if id.chars().count() > 13 {
        let head: String = id.chars().take(8).collect();
        format!("{head}…")
    } else {
        id.to_owned()
    }
}

/// A table of events, newest or oldest first as given.
pub fn events_table(id: &str, events: &[StoredEvent]) -> Markup {
    html! {
        table.data id=(id) {
            (events_head())
            tbody {
                @for event in events { (event_row(event)) }
            }
        }
        @if events.is_empty() { p.empty { "No events." } }
    }
}
