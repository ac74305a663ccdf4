//! The REST edge against hostile input (issue 11), end to end over HTTP on both stores: control
//! characters anywhere in a body, trailing data, non-JSON content types, `*` policy subjects,
//! and authentication before anything else.

use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::api_tests;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Sends `body` as raw text with `content_type` (none: no header).
async fn raw(
    api: &TestApi,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = api
        .client
        .request(method, format!("{}{path}", api.base))
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn field(body: &Value) -> Option<&str> {
    body["errors"][0]["field"].as_str()
}

async fn head(api: &TestApi) -> i64 {
    api.store().head_position().await.expect("head position")
}

async fn given_control_characters_in_any_text_field_when_sent_then_422_names_the_field_and_nothing_is_stored(
    api: TestApi,
) {
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    let admin = api.admin().await;
    let product = api.product(&seller, 500, 10).await;
    let order = api.order(&customer, &[(&product, 1)], "EUR").await;
    let before = head(&api).await;
    let cases: Vec<(Method, String, &Account, Value, &str)> = vec![
        (
            Method::PATCH,
            format!("/api/v1/products/{product}"),
            &seller,
            json!({"description": "blue\u{0}teapot"}),
            "description",
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{product}"),
            &seller,
            json!({"name": "ok", "description": "bell\u{7}"}),
            "description",
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{order}/cancel"),
            &customer,
            json!({"reason": "\u{0}"}),
            "reason",
        ),
        (
            Method::PUT,
            "/api/v1/policies".to_owned(),
            &admin,
            json!({"policy": format!("{}:get:orders:\u{0}", customer.id)}),
            "policy",
        ),
        (
            Method::DELETE,
            "/api/v1/policies".to_owned(),
            &admin,
            json!({"policy": format!("{}\u{1b}:get:orders:*", customer.id)}),
            "policy",
        ),
        (
            Method::POST,
            "/api/v1/orders".to_owned(),
            &customer,
            json!({"items": [{"product_id": product, "quantity": 1, "x": "a\u{0}"}],
                   "currency": "EUR"}),
            "items[0].x",
        ),
        (
            Method::POST,
            "/api/v1/products".to_owned(),
            &seller,
            json!({"name": "Mug", "description": "\u{0}", "price": 1,
                   "currency": "EUR", "stock": 1}),
            "description",
        ),
    ];
    for (method, path, account, body, expected) in cases {
        let answer = api
            .send(method.clone(), &path, Some(&account.token), Some(body), &[])
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {}",
            answer.body
        );
        assert_eq!(
            field(&answer.body),
            Some(expected),
            "{method} {path}: {}",
            answer.body
        );
    }
    let register = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": "nul@example.com", "password": "pass\u{0}word", "name": "N"}),
        )
        .await;
    assert_eq!(register.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&register.body), Some("password"));
    assert_eq!(
        head(&api).await,
        before,
        "a refused request appended events"
    );
    // Tabs and line breaks are text.
    let fine = api
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{product}"),
            Some(&seller.token),
            Some(json!({"description": "line one\n\tline two\r\n"})),
            &[],
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
}

async fn given_data_after_the_json_value_when_sent_then_400_and_nothing_is_stored(api: TestApi) {
    let customer = api.register("customer").await;
    let path = format!("/api/v1/accounts/{}/deposits", customer.id);
    let before = head(&api).await;
    for body in [
        r#"{"amount": 100, "currency": "EUR"} trailing"#,
        r#"{"amount": 100, "currency": "EUR"}{"amount": 100, "currency": "EUR"}"#,
        r#"{"amount": 100, "currency": "EUR"} 1"#,
    ] {
        let (status, answer) = raw(
            &api,
            Method::POST,
            &path,
            Some(&customer.token),
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["errors"][0]["message"].is_string(), "{answer}");
    }
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, _) = raw(
        &api,
        Method::POST,
        "/api/v1/accounts",
        None,
        Some("application/json"),
        &format!(r#"{{"email":"{email}","password":"long enough","name":"T"}} x"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(head(&api).await, before);
    // Whitespace after the value is fine.
    let (status, answer) = raw(
        &api,
        Method::POST,
        &path,
        Some(&customer.token),
        Some("application/json"),
        "{\"amount\": 100, \"currency\": \"EUR\"}\n  ",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn given_a_body_without_a_json_content_type_when_sent_then_415(api: TestApi) {
    let customer = api.register("customer").await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 500, 10).await;
    let order = api.order(&customer, &[(&product, 1)], "EUR").await;
    let deposit = format!("/api/v1/accounts/{}/deposits", customer.id);
    let body = r#"{"amount": 100, "currency": "EUR"}"#;
    let before = head(&api).await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("text/json"),
        None,
    ] {
        let (status, answer) = raw(
            &api,
            Method::POST,
            &deposit,
            Some(&customer.token),
            content_type,
            body,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {answer}"
        );
        assert_eq!(field(&answer), Some("Content-Type"));
    }
    let (status, _) = raw(
        &api,
        Method::POST,
        &format!("/api/v1/orders/{order}/cancel"),
        Some(&customer.token),
        Some("text/plain"),
        r#"{"reason": "no"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(head(&api).await, before);
    // JSON with parameters is JSON.
    for content_type in [Some("application/json; charset=utf-8")] {
        let (status, answer) = raw(
            &api,
            Method::POST,
            &deposit,
            Some(&customer.token),
            content_type,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{content_type:?}: {answer}");
    }
    // An empty cancel body needs no Content-Type.
    let (status, answer) = raw(
        &api,
        Method::POST,
        &format!("/api/v1/orders/{order}/cancel"),
        Some(&customer.token),
        Some("text/plain"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn given_a_policy_for_subject_star_when_put_then_422_and_nothing_is_granted(api: TestApi) {
    let admin = api.admin().await;
    let before = head(&api).await;
    for method in [Method::PUT, Method::DELETE] {
        let answer = api
            .send(
                method.clone(),
                "/api/v1/policies",
                Some(&admin.token),
                Some(json!({"policy": "*:get:products:*"})),
                &[],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method}: {}",
            answer.body
        );
        let (message, field) = answer.error();
        assert_eq!(field.as_deref(), Some("policy"));
        assert!(message.contains("account id"), "{message}");
    }
    assert_eq!(head(&api).await, before);
}

async fn given_no_token_when_the_path_id_header_or_body_is_also_bad_then_401_first(api: TestApi) {
    type Case<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
    let long_key = "k".repeat(300);
    let cases: [Case; 6] = [
        (Method::DELETE, "/api/v1/accounts/not-a-uuid", &[], None),
        (
            Method::POST,
            "/api/v1/products/nope/restock",
            &[],
            Some("{"),
        ),
        (
            Method::PATCH,
            "/api/v1/products/0190f1d2-0000-7000-8000-000000000000",
            &[("if-match", "not a version")],
            Some("{}"),
        ),
        (
            Method::POST,
            "/api/v1/orders",
            &[("idempotency-key", "")],
            Some("{}"),
        ),
        (
            Method::POST,
            "/api/v1/orders",
            &[("content-type", "text/plain")],
            Some("x"),
        ),
        (
            Method::PUT,
            "/api/v1/policies",
            &[("idempotency-key", &long_key)],
            Some("[]"),
        ),
    ];
    for (method, path, headers, body) in cases {
        let mut request = api
            .client
            .request(method.clone(), format!("{}{path}", api.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.expect("sent");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} {headers:?}"
        );
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
}

async fn given_a_body_over_the_limit_on_any_route_when_sent_then_413_and_nothing_changes(
    api: TestApi,
) {
    let customer = api.register("customer").await;
    let limit = api.test.settings.max_body_bytes;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(limit + 1));
    let before = head(&api).await;
    // Routes that read a body and routes that take none (DELETE) alike.
    for (method, path) in [
        (Method::DELETE, format!("/api/v1/accounts/{}", customer.id)),
        (
            Method::POST,
            format!("/api/v1/accounts/{}/deposits", customer.id),
        ),
        (Method::POST, "/api/v1/sessions".to_owned()),
    ] {
        let (status, answer) = raw(
            &api,
            method.clone(),
            &path,
            Some(&customer.token),
            Some("application/json"),
            &big,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {answer}"
        );
        assert!(answer["errors"][0]["message"].is_string(), "{answer}");
    }
    assert_eq!(head(&api).await, before);
}

api_tests!(
    given_a_body_over_the_limit_on_any_route_when_sent_then_413_and_nothing_changes,
    given_control_characters_in_any_text_field_when_sent_then_422_names_the_field_and_nothing_is_stored,
    given_data_after_the_json_value_when_sent_then_400_and_nothing_is_stored,
    given_a_body_without_a_json_content_type_when_sent_then_415,
    given_a_policy_for_subject_star_when_put_then_422_and_nothing_is_granted,
    given_no_token_when_the_path_id_header_or_body_is_also_bad_then_401_first,
);
