//! `GET /console/audit?actor=&from=&to=`: who did what when, oldest first, 100 entries a page
//! (`after`: the last position shown), from the audit read model ([`query_api::audit`], the
//! read behind GraphQL's `audit` and `eventshop audit`); and `GET /console/audit.csv` with the
//! same filters: every matching entry as CSV.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::html;
use query_api::{AuditEntry, AuditFilter};

use crate::error::{PageError, PageResult};
use crate::layout::{self, Nav};
use crate::session::Admin;
use crate::{number, parameters, text, time, Console, Parameters};

/// Entries on a page.
const PAGE: i64 = 100;
/// Most entries in one CSV download.
const CSV_MAX: usize = 100_000;

fn filter(parameters: &Parameters) -> PageResult<AuditFilter> {
    let filter = AuditFilter {
        actor: text(parameters, "actor")?,
        resource_type: None,
        resource_id: None,
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

fn filter_query(parameters: &Parameters) -> String {
    ["actor", "from", "to"]
        .iter()
        .filter_map(|name| {
            let value = parameters.get(*name)?.trim();
            (!value.is_empty()).then(|| format!("{name}={}", layout::encode(value)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /console/audit`.
pub async fn page(
    State(console): State<Console>,
    admin: Admin,
    query: Result<Query<Parameters>, QueryRejection>,
) -> PageResult<Response> {
    let parameters = parameters(query)?;
    let filter = filter(&parameters)?;
    let after = number(&parameters, "after")?.unwrap_or(0);
    let entries = query_api::audit(console.store(), &filter, after, PAGE)
        .await
        .map_err(PageError::internal)?;
    let filters = filter_query(&parameters);
    let joiner = if filters.is_empty() { "" } else { "&" };
    let next = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.position))
        .flatten()
        .map(|last| format!("/console/audit?{filters}{joiner}after={last}"));
    let value = |name: &str| {
        parameters
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let body = html! {
        h1 { "Audit" }
        form #audit-filters .filters method="get" action="/console/audit" {
            label { span { "Actor" } input type="text" name="actor" value=(value("actor")); }
            label { span { "From (UTC)" } input type="text" name="from" value=(value("from")) placeholder="YYYY-MM-DDTHH:MM"; }
            label { span { "To (UTC)" } input type="text" name="to" value=(value("to")) placeholder="YYYY-MM-DDTHH:MM"; }
            div.actions {
                button #apply-audit-filters type="submit" { "Apply" }
                a #csv .button.secondary href={ "/console/audit.csv?" (filters) } { "Download CSV" }
            }
        }
        table.data #audit {
            thead { tr {
                th { "#" } th { "Time" } th { "Actor" } th { "Action" } th { "Aggregate" }
            } }
            tbody {
                @for e in &entries {
                    tr.entry data-position=(e.position) {
                        td.position { (e.position) }
                        td.recorded-at { (layout::time(&e.recorded_at)) }
                        td.actor {
                            @if let Some(actor) = &e.actor {
                                a href={ "/console/audit?actor=" (layout::encode(actor)) } title=(actor) { (layout::short(actor)) }
                            } @else { "—" }
                        }
                        td.event-type { span.badge.type { (e.event_type) } }
                        td.aggregate {
                            a href=(layout::aggregate_href(&e.aggregate_type, &e.aggregate_id, Some(e.version as u64))) {
                                span.kind { (e.aggregate_type) } " " (layout::short(&e.aggregate_id)) " v" (e.version)
                            }
                        }
                    }
                }
            }
        }
        @if entries.is_empty() { p.empty { "No entries." } }
        @if let Some(next) = next { p.pager { a #audit-next .button href=(next) { "Next →" } } }
    };
    Ok(layout::page("Audit", &admin, Nav::Audit, body).into_response())
}

/// One CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so that a spreadsheet does not run it as a formula.
fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The CSV header row.
pub const CSV_HEADER: &str =
    "position,recorded_at,actor,event_type,aggregate_type,aggregate_id,version,correlation_id\r\n";

fn csv_line(e: &AuditEntry) -> String {
    let fields = [
        e.position.to_string(),
        e.recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.actor.clone().unwrap_or_default(),
        e.event_type.clone(),
        e.aggregate_type.clone(),
        e.aggregate_id.clone(),
        e.version.to_string(),
        e.correlation_id.clone().unwrap_or_default(),
    ];
    let mut line = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `GET /console/audit.csv`.
pub async fn csv(
    State(console): State<Console>,
    _admin: Admin,
    query: Result<Query<Parameters>, QueryRejection>,
) -> PageResult<Response> {
    let parameters = parameters(query)?;
    let filter = filter(&parameters)?;
    let mut out = String::from(CSV_HEADER);
    let mut after = 0;
    let mut count = 0;
    while count < CSV_MAX {
        let page = query_api::audit(console.store(), &filter, after, 1000)
            .await
            .map_err(PageError::internal)?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for entry in &page {
            out.push_str(&csv_line(entry));
        }
        count += page.len();
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"audit.csv\""),
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_field_is_quoted_and_never_a_formula() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
    }
}
