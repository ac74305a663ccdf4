//! The OpenAPI 3 document, generated from the handlers' annotations and then completed with
//! what every operation shares: the statuses the edge can answer (400, 401, 408, 413, 415, 422),
//! the text rule and currency codes as schema constraints, and the `If-Match` and
//! `Idempotency-Key` header formats.

use std::sync::OnceLock;

use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers;

/// The whole REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "eventshop command API",
        description = "The write side of eventshop: every accepted command answers with the aggregate's id, its new `version` (also as `ETag`) and the global `position` of its last event. Errors are `{\"errors\":[{\"message\",\"field\"}]}`. An `Idempotency-Key` makes a command exactly-once: its record (request fingerprint and response) commits in the same transaction as the command's events, and a repeat replays the response with `Idempotent-Replayed: true`. Registration replays carry fresh tokens; `/sessions` and `/sessions/refresh` refuse the header with a 400. Personal data (e-mail, name, password hash) is stored encrypted per account and erased with `DELETE /api/v1/accounts/{id}?erase=true`."
    ),
    paths(
        handlers::accounts::register,
        handlers::accounts::delete_account,
        handlers::accounts::deposit,
        handlers::sessions::login,
        handlers::sessions::refresh,
        handlers::products::create,
        handlers::products::patch,
        handlers::products::restock,
        handlers::orders::place,
        handlers::orders::cancel,
        handlers::policies::put,
        handlers::policies::delete,
        handlers::healthz,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Strings that keep the text rule ([`domain::text`]): no control character but tab, LF, CR.
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// A name ([`domain::Name`]): no control character at all, and at least one character that is
/// neither that nor white space.
pub const NAME_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// An e-mail address ([`domain::Email`]): dot-separated atoms, `@`, two or more labels.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,62}){0,3}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,2}\.[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$";

/// A policy ([`domain::Policy`]): an account id and three parts, each `*` or a name.
pub const POLICY_PATTERN: &str = r"^[^:*\s\u0000-\u001F\u007F-\u009F]{1,100}(:(\*|[^:*\s\u0000-\u001F\u007F-\u009F]{1,100})){3}$";

/// An `If-Match` value the API reads: a version, bare, quoted or weak.
pub const IF_MATCH_PATTERN: &str = r#"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#;

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (inner spaces allowed).
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]([ -~]*[!-~])?$";

/// The served document (`/api/v1/openapi.json`).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
        complete(&mut doc);
        doc
    })
}

/// Adds what the annotations leave out (see the module documentation).
fn complete(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                complete_operation(path, method, operation);
            }
        }
    }
    // Request bodies (and what they refer to) get the string constraints; answers do not (an
    // error message may quote the refused text).
    let mut pending: Vec<String> = Vec::new();
    collect_refs(&doc["paths"], "requestBody", &mut pending);
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = doc["components"]["schemas"].get_mut(&name) {
            constrain_strings(schema, None);
            collect_refs(schema, "", &mut pending);
        }
    }
}

/// The component names that `$ref`s under `value` name; with `under` set, only below keys of
/// that name.
fn collect_refs(value: &Value, under: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, item) in object {
                if key == "$ref" && under.is_empty() {
                    if let Some(name) = item
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    {
                        found.push(name.to_owned());
                    }
                } else if !under.is_empty() && key == under {
                    collect_refs(item, "", found);
                } else {
                    collect_refs(item, under, found);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_refs(item, under, found);
            }
        }
        _ => {}
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn complete_operation(path: &str, method: &str, operation: &mut Value) {
    let has_body = operation.get("requestBody").is_some();
    let secured = operation.get("security").is_some();
    let mut has_params = false;
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            has_params = true;
            let name = parameter["name"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match name.as_str() {
                "if-match" => {
                    parameter["schema"] = json!({"type": "string", "pattern": IF_MATCH_PATTERN});
                }
                "idempotency-key" => {
                    parameter["schema"] = json!({
                        "type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": IDEMPOTENCY_KEY_PATTERN
                    });
                }
                _ => {}
            }
        }
    }
    if !path.starts_with("/api/") {
        return;
    }
    let responses = &mut operation["responses"];
    let mut add = |status: &str, description: &str| {
        if responses.get(status).is_none() {
            responses[status] = error_response(description);
        }
    };
    if has_body || has_params {
        add(
            "400",
            "the body is not exactly one JSON value, or a path id or header is malformed",
        );
    }
    if secured {
        add(
            "401",
            "no, an invalid or an expired token, or the account was deleted",
        );
    }
    if has_body {
        add("408", "the body did not arrive in time");
        add("413", "the body is larger than the limit");
        add("415", "the body is not JSON (Content-Type)");
        add(
            "422",
            "a field is missing, unknown, of the wrong type or invalid",
        );
    }
    if path == "/api/v1/sessions" && method == "post" {
        add(
            "429",
            "too many attempts; retry after the time in Retry-After",
        );
    }
    add(
        "503",
        "the database is busy or unreachable for now; retry after the time in Retry-After",
    );
}

/// Every ISO 4217 code the API accepts, in upper case.
fn currency_codes() -> Vec<Value> {
    let mut codes = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let code = String::from_utf8_lossy(&[a, b, c]).into_owned();
                if domain::Currency::parse(&code).is_ok() {
                    codes.push(Value::String(code));
                }
            }
        }
    }
    codes
}

/// Puts the text rule on every free string of a request or response schema, and the currency
/// codes on every `currency`.
fn constrain_strings(schema: &mut Value, name: Option<&str>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let types: Vec<String> = match object.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if types.iter().any(|t| t == "string") {
        let nullable = types.iter().any(|t| t == "null");
        if name == Some("currency") {
            let mut codes = currency_codes();
            if nullable {
                codes.push(Value::Null);
            }
            object.insert("enum".into(), Value::Array(codes));
        } else if !["pattern", "format", "enum"]
            .iter()
            .any(|k| object.contains_key(*k))
        {
            object.insert("pattern".into(), Value::String(TEXT_PATTERN.into()));
        }
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for (key, property) in properties.iter_mut() {
            constrain_strings(property, Some(key));
        }
    }
    if let Some(items) = object.get_mut("items") {
        constrain_strings(items, None);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(variants)) = object.get_mut(key) {
            for variant in variants {
                constrain_strings(variant, name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_bodies_errors_and_bearer_auth() {
        let doc = document().clone();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "RegisterRequest",
            "DepositRequest",
            "PlaceOrderRequest",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(doc["paths"]["/api/v1/orders"]["post"]["responses"]["202"].is_object());
    }

    #[test]
    fn given_the_document_then_every_operation_lists_the_edge_statuses() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/api/") {
                continue;
            }
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                let mut expected = vec!["503"];
                if operation.get("requestBody").is_some() {
                    expected.extend(["400", "408", "413", "415", "422"]);
                }
                if operation.get("security").is_some() {
                    expected.push("401");
                }
                for status in expected {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
        let quantity = &doc["components"]["schemas"]["OrderItemRequest"]["properties"]["quantity"];
        assert_eq!(quantity["minimum"], 1, "{quantity}");
        let currency = &doc["components"]["schemas"]["DepositRequest"]["properties"]["currency"];
        assert!(currency["enum"].as_array().unwrap().contains(&json!("EUR")));
        let reason = &doc["components"]["schemas"]["CancelOrderRequest"]["properties"]["reason"];
        assert_eq!(reason["maxLength"], 500, "{reason}");
        assert_eq!(reason["pattern"], TEXT_PATTERN);
        let message = &doc["components"]["schemas"]["ErrorItem"]["properties"]["message"];
        assert!(
            message.get("pattern").is_none(),
            "answers are not constrained"
        );
        let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"];
        assert_eq!(register["name"]["pattern"], NAME_PATTERN);
        assert_eq!(register["email"]["pattern"], EMAIL_PATTERN);
        let policy = &doc["components"]["schemas"]["PolicyRequest"]["properties"]["policy"];
        assert_eq!(policy["pattern"], POLICY_PATTERN);
    }
}
