//! The GraphQL side of the hardening (issue 11), over HTTP: text arguments with control
//! characters, the body limit (alone and merged beside REST), list costs and history pages,
//! each request's share of the pool, malformed and batched requests, and stock clients'
//! introspection query.

use std::time::Duration;

use eventshop_tests::api::TestApi;
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::graphql_tests;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The graphql-core 3.3 `get_introspection_query()` text (gql's `fetch_schema_from_transport`
/// sends the same), and with every option on.
const INTROSPECTION: &str =
    include_str!("../../query-api/tests/fixtures/graphql_core_3_3_introspection.graphql");
const INTROSPECTION_ALL: &str = include_str!(
    "../../query-api/tests/fixtures/graphql_core_3_3_introspection_all_options.graphql"
);

/// A raw answer.
struct Raw {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
}

impl Raw {
    /// Asserts the GraphQL error shape: JSON with `errors[0].message` and
    /// `errors[0].extensions.code`; returns the code.
    fn error_code(&self) -> String {
        assert!(
            self.content_type.contains("json"),
            "not JSON: {} {}",
            self.content_type,
            self.body
        );
        let error = &self.body["errors"][0];
        assert!(error["message"].is_string(), "{}", self.body);
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {}", self.body))
            .to_owned()
    }
}

async fn raw(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> Raw {
    let mut request = client.request(method, url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Raw {
        status,
        content_type,
        retry_after,
        body,
    }
}

async fn post_json(gql: &TestGraphql, body: impl Into<reqwest::Body>) -> Raw {
    raw(
        &gql.api.client,
        Method::POST,
        &gql.endpoint,
        Some("application/json"),
        body,
        &[],
    )
    .await
}

/// A bare HTTP/1.1 POST of `body` in one chunk (no Content-Length); the whole response.
async fn chunked_post(url: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("an http URL");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

async fn with_options(options: query_api::Options) -> TestGraphql {
    TestGraphql::start(TestApi::sqlite().await, options).await
}

// ---- Item 3: control characters in every text argument and variable ----------------------

async fn given_a_nul_in_any_text_argument_or_variable_when_queried_then_bad_user_input_names_it(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let ann = api.register("customer").await;
    let id = ann.id.clone();
    let nul = "\\u0000";
    let cases: Vec<(String, Value, &str)> = vec![
        (format!(r#"{{ products(after: "a{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "products.after"),
        (format!(r#"{{ products(filter: {{ nameContains: "t{nul}" }}) {{ edges {{ cursor }} }} }}"#), json!({}), "products.filter.nameContains"),
        (format!(r#"{{ orders(after: "{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "orders.after"),
        (format!(r#"{{ orders(accountId: "{id}{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "orders.accountId"),
        (format!(r#"{{ audit(actor: "{id}{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "audit.actor"),
        (format!(r#"{{ audit(actor: "{id}", resourceId: "{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "audit.resourceId"),
        (format!(r#"{{ audit(actor: "{id}", resourceType: "order{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "audit.resourceType"),
        (format!(r#"{{ audit(actor: "{id}", after: "1{nul}") {{ edges {{ cursor }} }} }}"#), json!({}), "audit.after"),
        (format!(r#"{{ policies(subject: "{id}{nul}") {{ subject }} }}"#), json!({}), "policies.subject"),
        (format!(r#"{{ can(subject: "{id}{nul}", action: "get", resourceType: "orders", resourceId: "x") }}"#), json!({}), "can.subject"),
        (format!(r#"{{ can(subject: "{id}", action: "g{nul}", resourceType: "orders", resourceId: "x") }}"#), json!({}), "can.action"),
        (format!(r#"{{ can(subject: "{id}", action: "get", resourceType: "{nul}", resourceId: "x") }}"#), json!({}), "can.resourceType"),
        (format!(r#"{{ can(subject: "{id}", action: "get", resourceType: "orders", resourceId: "{nul}") }}"#), json!({}), "can.resourceId"),
        (format!(r#"{{ history(aggregateType: "account{nul}", aggregateId: "{id}") {{ version }} }}"#), json!({}), "history.aggregateType"),
        (format!(r#"{{ history(aggregateType: "account", aggregateId: "{id}{nul}") {{ version }} }}"#), json!({}), "history.aggregateId"),
        (format!(r#"{{ order(id: "{nul}") {{ id }} }}"#), json!({}), "order.id"),
        (format!(r#"{{ product(id: "{nul}") {{ id }} }}"#), json!({}), "product.id"),
        (format!(r#"{{ account(id: "{nul}") {{ id }} }}"#), json!({}), "account.id"),
        (format!(r#"{{ wallet(accountId: "{nul}") {{ balance {{ amount }} }} }}"#), json!({}), "wallet.accountId"),
        ("query($a: String) { products(after: $a) { edges { cursor } } }".into(), json!({"a": "x\u{0}"}), "$a"),
        ("query($s: String!) { policies(subject: $s) { subject } }".into(), json!({"s": format!("{id}\u{0}")}), "$s"),
        ("query($f: ProductFilter) { products(filter: $f) { edges { cursor } } }".into(), json!({"f": {"nameContains": "\u{1b}[2J"}}), "$f.nameContains"),
        ("query($t: String!, $i: ID!) { history(aggregateType: $t, aggregateId: $i) { version } }".into(), json!({"t": "account", "i": format!("{id}\u{7f}")}), "$i"),
    ];
    for (query, variables, named) in cases {
        let answer = gql.query(&ann.token, &query, variables).await;
        assert_eq!(answer.status.as_u16(), 200, "{query}: {}", answer.body);
        assert_eq!(
            answer.codes(),
            vec!["BAD_USER_INPUT"],
            "{query}: {}",
            answer.body
        );
        let message = answer.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{named}`")),
            "{query}: {message}"
        );
    }
    // Tabs and line breaks are text; the same queries with clean strings answer.
    let clean = gql
        .query(
            &ann.token,
            "query($s: String!) { policies(subject: $s) { subject } can(subject: $s, action: \"get\", resourceType: \"accounts\", resourceId: $s)
               products(filter: { nameContains: \"tea\\tpot\\n\" }) { edges { cursor } } }",
            json!({"s": ann.id}),
        )
        .await;
    assert_eq!(clean.data()["can"], json!(true), "{}", clean.body);
}

// ---- Item 4: body limit, list costs, history pages, the pool share ----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_body_over_the_limit_when_posted_alone_or_beside_rest_then_413_in_the_graphql_shape(
) {
    let gql = TestGraphql::sqlite().await;
    let padding = "x".repeat(70 * 1024);
    let big = json!({"query": "{ __typename }", "variables": {"pad": padding}}).to_string();
    let fits =
        json!({"query": "{ __typename }", "variables": {"pad": "x".repeat(60 * 1024)}}).to_string();

    // The query API's own router.
    let alone = post_json(&gql, big.clone()).await;
    assert_eq!(
        alone.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        alone.body
    );
    assert_eq!(alone.error_code(), "BAD_USER_INPUT");
    let ok = post_json(&gql, fits.clone()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["data"]["__typename"], json!("Query"));
    // Without a Content-Length (chunked), the limit holds as the body streams in.
    let streamed = chunked_post(&gql.endpoint, &big).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(streamed.contains("BAD_USER_INPUT"), "{streamed}");

    // Merged beside REST as `eventshop serve` does.
    let api = &gql.api;
    let authenticator = api.app.state().authenticator().clone();
    let graphql = query_api::build(api.store().clone(), authenticator)
        .with_max_body_bytes(api.test.settings.max_body_bytes);
    let router = api.app.router().merge(graphql.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(command_api::serve(listener, router, async {
        let _ = stopped.await;
    }));
    let client = &api.client;
    let url = format!("{base}/graphql");
    let merged = raw(
        client,
        Method::POST,
        &url,
        Some("application/json"),
        big,
        &[],
    )
    .await;
    assert_eq!(
        merged.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        merged.body
    );
    assert_eq!(merged.error_code(), "BAD_USER_INPUT");
    let ok = raw(
        client,
        Method::POST,
        &url,
        Some("application/json"),
        fits,
        &[],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let other = raw(client, Method::DELETE, &url, None, "", &[]).await;
    assert_eq!(other.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(other.error_code(), "BAD_USER_INPUT");
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_2400_aliases_of_history_payload_when_queried_then_the_complexity_limit_refuses_it() {
    // A body limit large enough to carry the query: the complexity limit must refuse it.
    let gql = with_options(query_api::Options {
        max_body_bytes: 1 << 20,
        ..Default::default()
    })
    .await;
    let ann = gql.api.register("customer").await;
    let one = format!(
        r#"history(aggregateType: "account", aggregateId: "{}") {{ payload }}"#,
        ann.id
    );
    let aliases: String = (0..2400).map(|i| format!("h{i}: {one}\n")).collect();
    let answer = gql
        .query(&ann.token, &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(answer.codes(), vec!["BAD_USER_INPUT"], "{}", answer.body);
    assert!(
        answer.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{}",
        answer.body
    );
    // A page of history counts its size: 1000 events of 5 fields is over the limit, of one
    // field within it; one default page is cheap.
    let wide = format!(
        r#"{{ history(aggregateType: "account", aggregateId: "{}", first: 1000) {{ position version eventType actor payload }} }}"#,
        ann.id
    );
    assert_eq!(
        gql.query(&ann.token, &wide, json!({})).await.codes(),
        vec!["BAD_USER_INPUT"]
    );
    let narrow = format!(
        r#"{{ history(aggregateType: "account", aggregateId: "{}", first: 1000) {{ payload }} }}"#,
        ann.id
    );
    let narrow = gql.query(&ann.token, &narrow, json!({})).await;
    assert_eq!(narrow.data()["history"].as_array().map(Vec::len), Some(1));
    let too_many = format!(
        r#"{{ history(aggregateType: "account", aggregateId: "{}", first: 1001) {{ version }} }}"#,
        ann.id
    );
    assert_eq!(
        gql.query(&ann.token, &too_many, json!({})).await.codes(),
        vec!["BAD_USER_INPUT"]
    );
    // Transactions count their page too.
    let transactions = format!(
        r#"{{ a: wallet(accountId: "{id}") {{ transactions(first: 1000) {{ position kind reason recordedAt amount {{ amount currency }} }} }} }}"#,
        id = ann.id
    );
    assert_eq!(
        gql.query(&ann.token, &transactions, json!({}))
            .await
            .codes(),
        vec!["BAD_USER_INPUT"]
    );
}

async fn given_a_wallet_with_many_events_when_its_history_and_transactions_are_read_then_they_come_in_pages(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let ann = api.register("customer").await;
    for _ in 0..120 {
        let deposit = api
            .post(
                &format!("/api/v1/accounts/{}/deposits", ann.id),
                Some(&ann.token),
                json!({"amount": 1, "currency": "EUR"}),
            )
            .await;
        assert_eq!(deposit.status.as_u16(), 201, "{}", deposit.body);
    }
    gql.project().await;
    let page = |after: Value| {
        let gql = &gql;
        let ann = &ann;
        async move {
            gql.query(
                &ann.token,
                "query($id: ID!, $after: Int) { history(aggregateType: \"wallet\", aggregateId: $id, afterVersion: $after) { version } }",
                json!({"id": ann.id, "after": after}),
            )
            .await
            .data()["history"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["version"].as_i64().unwrap())
                .collect::<Vec<i64>>()
        }
    };
    let first = page(Value::Null).await;
    assert_eq!(
        first,
        (1..=100).collect::<Vec<i64>>(),
        "a default page is 100 events"
    );
    let rest = page(json!(100)).await;
    assert_eq!(rest, (101..=121).collect::<Vec<i64>>());

    let transactions = |after: Value| {
        let gql = &gql;
        let ann = &ann;
        async move {
            gql.query(
                &ann.token,
                "query($id: ID!, $after: Int) { wallet(accountId: $id) { transactions(first: 50, afterPosition: $after) { position } } }",
                json!({"id": ann.id, "after": after}),
            )
            .await
            .data()["wallet"]["transactions"]
                .as_array()
                .expect("transactions")
                .iter()
                .map(|t| t["position"].as_i64().unwrap())
                .collect::<Vec<i64>>()
        }
    };
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = transactions(after).await;
        assert!(page.len() <= 50);
        let Some(last) = page.last() else { break };
        after = json!(last);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 120);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

async fn given_a_request_over_its_statement_budget_when_run_then_it_is_bad_user_input_not_internal(
    api: TestApi,
) {
    let budgeted = TestGraphql::start(
        api,
        query_api::Options {
            max_statements: 3,
            ..Default::default()
        },
    )
    .await;
    let api = &budgeted.api;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 1).await;
    budgeted.project().await;
    let aliases: String = (0..5)
        .map(|i| format!("p{i}: product(id: \"{product}\") {{ name }}\n"))
        .collect();
    let answer = budgeted
        .query(&seller.token, &format!("{{ {aliases} }}"), json!({}))
        .await;
    let codes = answer.codes();
    assert_eq!(
        codes,
        vec!["BAD_USER_INPUT", "BAD_USER_INPUT"],
        "{}",
        answer.body
    );
    assert!(answer.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("database statements"));
    assert_eq!(answer.body["data"]["p0"]["name"], json!("Teapot"));
    // Within the budget, the same request answers in full.
    let three: String = (0..3)
        .map(|i| format!("p{i}: product(id: \"{product}\") {{ name }}\n"))
        .collect();
    let answer = budgeted
        .query(&seller.token, &format!("{{ {three} }}"), json!({}))
        .await;
    assert_eq!(answer.data()["p2"]["name"], json!("Teapot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_requests_running_at_once_are_at_their_cap_when_another_comes_then_it_gets_503_not_a_connection(
) {
    let gql = with_options(query_api::Options {
        max_concurrent_requests: Some(1),
        request_timeout: Duration::from_millis(400),
        max_wait: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let ann = gql.api.register("customer").await;
    // A read-your-writes wait for a position never reached holds the only turn for 1.5 s.
    let holder = {
        let client = gql.api.client.clone();
        let url = gql.endpoint.clone();
        let token = ann.token.clone();
        tokio::spawn(async move {
            raw(
                &client,
                Method::POST,
                &url,
                Some("application/json"),
                json!({"query": "{ me { id } }"}).to_string(),
                &[
                    ("x-min-position", "1000000000"),
                    ("authorization", &format!("Bearer {token}")),
                ],
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let waiting = post_json(&gql, json!({"query": "{ __typename }"}).to_string()).await;
    assert_eq!(
        waiting.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        waiting.body
    );
    assert_eq!(waiting.error_code(), "SERVICE_UNAVAILABLE");
    assert_eq!(waiting.retry_after.as_deref(), Some("1"));
    // The holder itself ran past the timeout.
    let held = holder.await.expect("holder");
    assert_eq!(
        held.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        held.body
    );
    assert_eq!(held.error_code(), "SERVICE_UNAVAILABLE");
    // Its turn is given back.
    let after = gql.query(&ann.token, "{ __typename }", json!({})).await;
    assert_eq!(after.data()["__typename"], json!("Query"));
}

// ---- Item 14: malformed and batched requests --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_malformed_or_batched_requests_when_sent_then_each_answers_json_in_the_errors_shape()
{
    let gql = TestGraphql::sqlite().await;
    let client = &gql.api.client;
    let url = &gql.endpoint;
    let typename = json!({"query": "{ __typename }"}).to_string();
    let cases: Vec<(&str, Method, Option<&str>, String, StatusCode)> = vec![
        (
            "batch",
            Method::POST,
            Some("application/json"),
            format!("[{typename}, {typename}]"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad JSON",
            Method::POST,
            Some("application/json"),
            "{\"query\": ".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "trailing data",
            Method::POST,
            Some("application/json"),
            format!("{typename} trailing"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "empty body",
            Method::POST,
            Some("application/json"),
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a JSON string",
            Method::POST,
            Some("application/json"),
            "\"{ __typename }\"".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "query not a string",
            Method::POST,
            Some("application/json"),
            "{\"query\": 5}".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no query",
            Method::POST,
            Some("application/json"),
            "{}".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            Method::POST,
            Some("text/plain"),
            typename.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no content type",
            Method::POST,
            None,
            typename.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "a form",
            Method::POST,
            Some("application/x-www-form-urlencoded"),
            "query=%7B__typename%7D".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "PUT",
            Method::PUT,
            Some("application/json"),
            typename.clone(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (what, method, content_type, body, status) in cases {
        let answer = raw(client, method, url, content_type, body, &[]).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.error_code(), "BAD_USER_INPUT", "{what}");
    }
    let get = |query: &'static str| {
        let url = format!("{url}?{query}");
        async move { raw(client, Method::GET, &url, None, "", &[]).await }
    };
    for (what, query, status) in [
        (
            "GET with a query that does not parse",
            "query=%7B",
            StatusCode::OK,
        ),
        (
            "GET with variables that are not JSON",
            "query=%7B__typename%7D&variables=%7B",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET with variables not an object",
            "query=%7B__typename%7D&variables=%5B%5D",
            StatusCode::BAD_REQUEST,
        ),
        ("GET without a query", "foo=bar", StatusCode::BAD_REQUEST),
        ("GET with an empty query", "query=", StatusCode::BAD_REQUEST),
    ] {
        let answer = get(query).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.error_code(), "BAD_USER_INPUT", "{what}");
    }
    let ok = get("query=%7B__typename%7D").await;
    assert_eq!(ok.body["data"]["__typename"], json!("Query"), "{}", ok.body);
    // GraphQL over HTTP: the response media type follows Accept (application/json without).
    let negotiated = raw(
        client,
        Method::POST,
        url,
        Some("application/json"),
        typename.clone(),
        &[("accept", "application/graphql-response+json")],
    )
    .await;
    assert!(negotiated
        .content_type
        .starts_with("application/graphql-response+json"));
    let plain = raw(
        client,
        Method::POST,
        url,
        Some("application/json"),
        typename,
        &[],
    )
    .await;
    assert!(
        plain.content_type.starts_with("application/json"),
        "{}",
        plain.content_type
    );
    let graphiql = get("").await;
    assert!(
        graphiql.content_type.starts_with("text/html"),
        "GraphiQL without parameters"
    );
}

// ---- Item 12: stock clients' introspection ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_graphql_core_introspection_query_when_posted_with_or_without_a_token_then_a_schema_comes_back(
) {
    let gql = TestGraphql::sqlite().await;
    let ann = gql.api.register("customer").await;
    for (text, token) in [
        (INTROSPECTION, Some(ann.token.as_str())),
        (INTROSPECTION, None),
        (INTROSPECTION_ALL, Some(ann.token.as_str())),
    ] {
        let answer = gql.send(token, text, json!({}), &[]).await;
        let schema = &answer.data()["__schema"];
        assert_eq!(schema["queryType"]["name"], json!("Query"));
        let types = schema["types"].as_array().expect("types");
        let query = types
            .iter()
            .find(|t| t["name"] == json!("Query"))
            .expect("the Query type");
        let history = query["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == json!("history"))
            .expect("history");
        // [EventRecord!]!: NON_NULL > LIST > NON_NULL > OBJECT, read through ofType.
        assert_eq!(history["type"]["kind"], json!("NON_NULL"));
        assert_eq!(
            history["type"]["ofType"]["ofType"]["ofType"]["name"],
            json!("EventRecord")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_budget_spent_by_the_page_when_its_products_are_batch_loaded_then_the_batch_counts_too(
) {
    let gql = with_options(query_api::Options {
        // The caller's policy head and the page of orders; the products' batch is a third.
        max_statements: 2,
        ..Default::default()
    })
    .await;
    let api = &gql.api;
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    let product = api.product(&seller, 100, 5).await;
    api.order(&customer, &[(&product, 1)], "EUR").await;
    gql.project().await;
    let answer = gql
        .query(
            &customer.token,
            "{ orders(first: 1) { edges { node { id items { product { name } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(answer.codes(), vec!["BAD_USER_INPUT"], "{}", answer.body);
    let node = &answer.body["data"]["orders"]["edges"][0]["node"];
    assert!(node["id"].is_string(), "{}", answer.body);
    assert_eq!(node["items"][0]["product"], Value::Null, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_budget_on_postgres() {
    given_a_request_over_its_statement_budget_when_run_then_it_is_bad_user_input_not_internal(
        TestApi::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_budget_on_sqlite() {
    given_a_request_over_its_statement_budget_when_run_then_it_is_bad_user_input_not_internal(
        TestApi::sqlite().await,
    )
    .await;
}

graphql_tests!(
    given_a_nul_in_any_text_argument_or_variable_when_queried_then_bad_user_input_names_it,
    given_a_wallet_with_many_events_when_its_history_and_transactions_are_read_then_they_come_in_pages,
);
