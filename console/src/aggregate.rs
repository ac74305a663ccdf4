//! `GET /console/aggregates/{aggregate_type}/{id}?version=N|as_of=T`: an aggregate's state
//! after version N (through the GraphQL schema in process: `order(id, atVersion)` and its
//! siblings fold the log with the domain's own `apply`), what changed from version N−1
//! (highlighted), the event that made version N, and links to step through the versions.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

use crate::error::{PageError, PageResult};
use crate::layout::{self, Nav};
use crate::session::Admin;
use crate::{number, parameters, time, Console};

/// The GraphQL query of an aggregate type's state at a version, and the field it answers in.
fn state_query(aggregate_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match aggregate_type {
        "order" => (
            "query($id: ID!, $v: Int) { order(id: $id, atVersion: $v) { id accountId status \
             items { productId quantity unitPrice { amount currency } } \
             total { amount currency } amountDue { amount currency } reason placedAt version } }",
            "order",
        ),
        "product" => (
            "query($id: ID!, $v: Int) { product(id: $id, atVersion: $v) { id sellerId name \
             description sku price { amount currency } stockOnHand stockReserved \
             stockAvailable version } }",
            "product",
        ),
        "wallet" => (
            "query($id: ID!, $v: Int) { wallet(accountId: $id, atVersion: $v) { accountId \
             balance { amount currency } version } }",
            "wallet",
        ),
        "account" => (
            "query($id: ID!, $v: Int) { account(id: $id, atVersion: $v) { id email name role \
             deleted registeredAt version } }",
            "account",
        ),
        "policy_set" => (
            "query($id: String!, $v: Int) { policies(subject: $id, atVersion: $v) { subject \
             policies version } }",
            "policies",
        ),
        _ => return None,
    })
}

impl Console {
    /// The state of `aggregate_type`/`id` after `version` (GraphQL, as the admin).
    async fn state_at(
        &self,
        admin: &Admin,
        aggregate_type: &str,
        id: &str,
        version: i64,
    ) -> PageResult<Value> {
        let Some((query, field)) = state_query(aggregate_type) else {
            return Ok(Value::Null);
        };
        let request = async_graphql::Request::new(query).variables(
            async_graphql::Variables::from_json(serde_json::json!({"id": id, "v": version})),
        );
        let response = self.0.graphql.execute_as(&admin.subject, request).await;
        if let Some(error) = response.errors.first() {
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|c| c.to_string())
                .unwrap_or_default();
            return Err(if code.contains("BAD_USER_INPUT") {
                PageError::bad_request(error.message.clone())
            } else if code.contains("NOT_FOUND") {
                PageError::not_found(error.message.clone())
            } else {
                PageError::internal(format!("{}: {}", code, error.message))
            });
        }
        let data = response.data.into_json().map_err(PageError::internal)?;
        Ok(data[field].clone())
    }
}

/// The top-level fields whose value differs between `before` and `after`.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let Some(after) = after.as_object() else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(key, value)| before.get(key.as_str()) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The state as pretty JSON, one top-level field a line, changed ones marked `.changed`.
fn state_view(state: &Value, changed: &[String]) -> Markup {
    let Some(object) = state.as_object() else {
        return html! { pre #state .json { (layout::pretty(state)) } };
    };
    let last = object.len().saturating_sub(1);
    html! {
        pre #state .json {
            "{\n"
            @for (i, (key, value)) in object.iter().enumerate() {
                @let text = serde_json::to_string_pretty(value).unwrap_or_default().replace('\n', "\n  ");
                @let class = if changed.contains(key) { "field changed" } else { "field" };
                span class=(class) data-field=(key) {
                    "  \"" (key) "\": " (text) @if i < last { "," }
                }
                "\n"
            }
            "}"
        }
    }
}

fn aggregate_id_check(aggregate_type: &str, id: &str) -> PageResult<()> {
    if id.is_empty() || id.len() > 200 {
        return Err(PageError::bad_request(
            "the aggregate id is empty or too long",
        ));
    }
    let uuid_ids = ["order", "product", "wallet", "account"];
    if uuid_ids.contains(&aggregate_type) && uuid::Uuid::parse_str(id).is_err() {
        return Err(PageError::bad_request(format!(
            "{id:?} is not a UUID (the ids of {aggregate_type} aggregates are)"
        )));
    }
    Ok(())
}

/// `GET /console/aggregates/{aggregate_type}/{id}`.
pub async fn page(
    State(console): State<Console>,
    admin: Admin,
    Path((aggregate_type, id)): Path<(String, String)>,
    query: Result<Query<crate::Parameters>, QueryRejection>,
) -> PageResult<Response> {
    let parameters = parameters(query)?;
    let kind = query_api::query::aggregate_type(&aggregate_type).ok_or_else(|| {
        PageError::not_found(format!(
            "unknown aggregate type {aggregate_type:?}: use account, wallet, product, order, \
             policy_set or projection"
        ))
    })?;
    aggregate_id_check(kind, &id)?;
    let store = console.store();
    let last = store
        .last_version(kind, &id)
        .await
        .map_err(PageError::internal)?
        .ok_or_else(|| PageError::not_found(format!("there is no {kind} {id}")))?;
    let as_of = time(&parameters, "as_of")?;
    let version = match (number(&parameters, "version")?, as_of) {
        (Some(v), _) if v > last => {
            return Err(PageError::not_found(format!(
                "{kind} {id} has versions 1 to {last}, not {v}"
            )))
        }
        (Some(v), _) => v,
        (None, Some(t)) => store
            .version_as_of(kind, &id, t)
            .await
            .map_err(PageError::internal)?
            .ok_or_else(|| {
                PageError::not_found(format!(
                    "{kind} {id} did not exist yet at {}",
                    layout::time(&t)
                ))
            })?,
        (None, None) => last,
    };
    let event = store
        .aggregate_page(kind, &id, version - 1, 1)
        .await
        .map_err(PageError::internal)?
        .into_iter()
        .next()
        .ok_or_else(|| PageError::not_found(format!("{kind} {id} has no version {version}")))?;
    let state = console.state_at(&admin, kind, &id, version).await?;
    let previous = if version > 1 {
        console.state_at(&admin, kind, &id, version - 1).await?
    } else {
        Value::Null
    };
    let changed = changed_fields(&previous, &state);
    let href = |v: i64| layout::aggregate_href(kind, &id, Some(v as u64));
    let payload = match event.public_view() {
        Ok(view) => layout::pretty(&view),
        Err(e) => format!("(no public view: {e})"),
    };
    // The picker starts at the time asked, else at this version's event (rounded up to the
    // second, so that the picker's time includes the event).
    let shown = as_of.unwrap_or(event.recorded_at + chrono::Duration::milliseconds(999));
    let as_of_value = shown.format("%Y-%m-%dT%H:%M:%S").to_string();
    let body = html! {
        h1 {
            span.badge.kind { (kind) } " " code { (id) }
        }
        @if kind == "order" {
            p { a #order-saga href={ "/console/orders/" (layout::encode(&id)) } { "Saga timeline →" } }
        }
        nav.stepper {
            @if version > 1 {
                a #first .button href=(href(1)) { "« First" }
                a #prev .button href=(href(version - 1)) { "◀ Prev" }
            } @else {
                span #first .button.disabled aria-disabled="true" { "« First" }
                span #prev .button.disabled aria-disabled="true" { "◀ Prev" }
            }
            span.position { "Version " strong #version { (version) } " of " strong #last-version { (last) } }
            @if version < last {
                a #next .button href=(href(version + 1)) { "Next ▶" }
                a #last .button href=(href(last)) { "Last »" }
            } @else {
                span #next .button.disabled aria-disabled="true" { "Next ▶" }
                span #last .button.disabled aria-disabled="true" { "Last »" }
            }
            form #as-of-form .inline method="get" action=(layout::aggregate_href(kind, &id, None)) {
                label { "As of (UTC) " input #as-of type="datetime-local" name="as_of" value=(as_of_value) step="1"; }
                button #as-of-go type="submit" { "Go" }
            }
        }
        div.columns {
            section.card {
                h2 { "State after version " (version) }
                @if state.is_null() {
                    pre #state .json { "(no read of this aggregate type's state: see the event)" }
                } @else {
                    (state_view(&state, &changed))
                }
                @if !changed.is_empty() {
                    p.hint { "Changed by this event: " (changed.join(", ")) }
                }
            }
            section.card #event {
                h2 { "The event that made it" }
                dl {
                    dt { "Type" } dd.event-type { span.badge.type { (event.event_type) } }
                    dt { "Recorded" } dd.recorded-at { (layout::time(&event.recorded_at)) }
                    dt { "Position" } dd.position { (event.position) }
                    dt { "Actor" } dd.actor {
                        @if let Some(actor) = &event.metadata.actor {
                            a href=(layout::log_href("actor", actor)) { (actor) }
                        } @else { "—" }
                    }
                    dt { "Correlation" } dd.correlation {
                        @if let Some(c) = &event.metadata.correlation_id {
                            a href=(layout::log_href("correlation_id", c)) { (c) }
                        } @else { "—" }
                    }
                }
                pre.payload { (payload) }
            }
        }
    };
    Ok(layout::page(&format!("{kind} {id}"), &admin, Nav::Log, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_are_those_whose_value_differs_or_is_new() {
        let before = json!({"status": "PENDING", "version": 1, "id": "x"});
        let after = json!({"status": "APPROVED", "version": 2, "id": "x", "reason": null});
        let mut changed = changed_fields(&before, &after);
        changed.sort();
        assert_eq!(changed, vec!["reason", "status", "version"]);
        assert_eq!(changed_fields(&Value::Null, &json!({"a": 1})), vec!["a"]);
    }
}
