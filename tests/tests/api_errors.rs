//! The command API's error classes, end to end over HTTP on both stores: each asserts the status
//! and the `{"errors":[{"message","field"}]}` body.

use domain::wallet::Wallet;
use domain::{Currency, Money};
use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::api_tests;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

fn deposits(account: &Account) -> String {
    format!("/api/v1/accounts/{}/deposits", account.id)
}

async fn malformed_json_is_a_400(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .send_raw(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            "{\"amount\": 10,",
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let (message, field) = answer.error();
    assert!(
        message.starts_with("the body is not valid JSON"),
        "{message}"
    );
    assert_eq!(field, None);
}

async fn an_unknown_field_is_a_422_naming_it(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&account),
            Some(&account.token),
            json!({"amount": 10, "currency": "EUR", "colour": "red"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (message, field) = answer.error();
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert_eq!(field.as_deref(), Some("colour"));
}

async fn a_wrong_type_is_a_422_naming_the_field(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&account),
            Some(&account.token),
            json!({"amount": "ten", "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (message, field) = answer.error();
    assert!(message.contains("invalid type"), "{message}");
    assert_eq!(field.as_deref(), Some("amount"));
}

async fn a_missing_field_is_a_422_naming_it(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&account),
            Some(&account.token),
            json!({"amount": 5}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error().1.as_deref(), Some("currency"));
}

async fn a_bad_uuid_is_refused_naming_the_field(api: TestApi) {
    let account = api.register("customer").await;
    let in_path = api
        .post(
            "/api/v1/accounts/not-a-uuid/deposits",
            Some(&account.token),
            json!({"amount": 10, "currency": "EUR"}),
        )
        .await;
    assert_eq!(in_path.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        in_path.error(),
        (
            "\"not-a-uuid\" is not a UUID".to_owned(),
            Some("id".to_owned())
        )
    );
    let in_body = api
        .post(
            "/api/v1/orders",
            Some(&account.token),
            json!({"items": [{"product_id": "nope", "quantity": 1}], "currency": "EUR"}),
        )
        .await;
    assert_eq!(in_body.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(in_body.error().1.as_deref(), Some("items[0].product_id"));
}

async fn zero_or_negative_amounts_and_quantities_are_422(api: TestApi) {
    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 1).await;
    for amount in [0, -5] {
        let answer = api
            .post(
                &deposits(&seller),
                Some(&seller.token),
                json!({"amount": amount, "currency": "EUR"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            answer.error(),
            (
                "amount must be greater than zero".to_owned(),
                Some("amount".to_owned())
            )
        );
    }
    let zero = api
        .post(
            &format!("/api/v1/products/{product}/restock"),
            Some(&seller.token),
            json!({"quantity": 0}),
        )
        .await;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        zero.error(),
        (
            "quantity must be at least 1".to_owned(),
            Some("quantity".to_owned())
        )
    );
    let negative = api
        .post(
            "/api/v1/orders",
            Some(&seller.token),
            json!({"items": [{"product_id": product, "quantity": -1}], "currency": "EUR"}),
        )
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        negative.error(),
        (
            "quantity must not be negative".to_owned(),
            Some("items[0].quantity".to_owned())
        )
    );
    let free = api
        .post(
            "/api/v1/products",
            Some(&seller.token),
            json!({"name": "Gift", "price": 0, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_eq!(free.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(free.error().1.as_deref(), Some("price"));
}

async fn an_unknown_currency_is_a_422_naming_it(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&account),
            Some(&account.token),
            json!({"amount": 10, "currency": "XYZ"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error(),
        (
            "unknown ISO 4217 currency code \"XYZ\"".to_owned(),
            Some("currency".to_owned())
        )
    );
}

async fn an_over_long_string_is_a_422_naming_it(api: TestApi) {
    let seller = api.register("seller").await;
    let answer = api
        .post(
            "/api/v1/products",
            Some(&seller.token),
            json!({"name": "x".repeat(201), "price": 100, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error(),
        (
            "invalid name: name is 201 characters long, at most 200 allowed".to_owned(),
            Some("name".to_owned())
        )
    );
    let registration = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": "long@example.com", "password": "long enough", "name": "n".repeat(300)}),
        )
        .await;
    assert_eq!(registration.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(registration.error().1.as_deref(), Some("name"));
}

async fn a_missing_or_invalid_token_is_a_401(api: TestApi) {
    let account = api.register("customer").await;
    let body = json!({"amount": 10, "currency": "EUR"});
    let missing = api.post(&deposits(&account), None, body.clone()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.error(), ("missing bearer token".to_owned(), None));
    let invalid = api
        .post(&deposits(&account), Some("not.a.jwt"), body.clone())
        .await;
    assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
    assert!(
        invalid.error().0.starts_with("invalid token"),
        "{}",
        invalid.body
    );
    // A refresh token is no access token.
    let refresh = api
        .post(&deposits(&account), Some(&account.refresh), body)
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
}

async fn a_policy_denial_is_a_403(api: TestApi) {
    let alice = api.register("customer").await;
    let bob = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&alice),
            Some(&bob.token),
            json!({"amount": 10, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.error(),
        (
            format!("no policy allows post on accounts/{}", alice.id),
            None
        )
    );
    let product = api
        .post(
            "/api/v1/products",
            Some(&bob.token),
            json!({"name": "Mug", "price": 100, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_eq!(product.status, StatusCode::FORBIDDEN);
}

async fn an_unknown_aggregate_is_a_404(api: TestApi) {
    let admin = api.admin().await;
    let nobody = Uuid::now_v7();
    let wallet = api
        .post(
            &format!("/api/v1/accounts/{nobody}/deposits"),
            Some(&admin.token),
            json!({"amount": 10, "currency": "EUR"}),
        )
        .await;
    assert_eq!(wallet.status, StatusCode::NOT_FOUND);
    assert_eq!(wallet.error(), ("wallet not found".to_owned(), None));
    let order = api
        .post(
            &format!("/api/v1/orders/{nobody}/cancel"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(order.status, StatusCode::NOT_FOUND);
    assert_eq!(order.error(), ("order not found".to_owned(), None));
    let customer = api.register("customer").await;
    let missing_product = api
        .post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"items": [{"product_id": nobody, "quantity": 1}], "currency": "EUR"}),
        )
        .await;
    assert_eq!(missing_product.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing_product.error(),
        (
            format!("product {nobody} not found"),
            Some("items[0].product_id".to_owned())
        )
    );
}

async fn a_domain_conflict_is_a_409(api: TestApi) {
    let account = api.register("customer").await;
    let again = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": account.email, "password": "another password", "name": "Twin"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        again.error(),
        ("email already in use".to_owned(), Some("email".to_owned()))
    );

    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 5).await;
    let placed = api
        .post(
            "/api/v1/orders",
            Some(&account.token),
            json!({"items": [{"product_id": product, "quantity": 1}], "currency": "EUR"}),
        )
        .await;
    let cancel = format!(
        "/api/v1/orders/{}/cancel",
        placed.body["order_id"].as_str().unwrap()
    );
    // The body of a cancel may be left out.
    let first = api
        .send(Method::POST, &cancel, Some(&account.token), None, &[])
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let twice = api.post(&cancel, Some(&account.token), json!({})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(
        twice.error(),
        ("cannot Cancel an order that is CANCELED".to_owned(), None)
    );
}

async fn a_domain_rejection_is_a_422(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &deposits(&account),
            Some(&account.token),
            json!({"amount": 10, "currency": "USD"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error(),
        (
            "wallet holds EUR, got USD".to_owned(),
            Some("currency".to_owned())
        )
    );
    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 5).await;
    let mismatch = api
        .post(
            "/api/v1/orders",
            Some(&account.token),
            json!({"items": [{"product_id": product, "quantity": 1}], "currency": "USD"}),
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mismatch.error().1.as_deref(), Some("currency"));
}

async fn a_stale_if_match_is_a_409_with_the_current_version(api: TestApi) {
    let account = api.register("customer").await;
    let body = json!({"amount": 10, "currency": "EUR"});
    let first = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(body.clone()),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.etag(), Some("\"2\""));
    let stale = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(body.clone()),
            &[("If-Match", "1")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        stale.error(),
        (
            "If-Match names version 1, but the current version is 2".to_owned(),
            None
        )
    );
    assert_eq!(stale.etag(), Some("\"2\""));
    let wallet = api
        .store()
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap();
    assert_eq!(wallet.version, 2);
    assert_eq!(wallet.state.balance(), Some(Money::new(10, Currency::EUR)));

    let garbage = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(body),
            &[("If-Match", "yesterday")],
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.error().1.as_deref(), Some("If-Match"));
}

async fn an_idempotent_replay_returns_the_first_response_and_appends_nothing(api: TestApi) {
    let account = api.register("customer").await;
    let body = json!({"amount": 250, "currency": "EUR"});
    let key = [("Idempotency-Key", "deposit-1")];
    let first = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(body.clone()),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let head = api.store().head_position().await.unwrap();
    let again = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(body.clone()),
            &key,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.etag(), first.etag());
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(api.store().head_position().await.unwrap(), head);
    let wallet = api
        .store()
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap();
    assert_eq!(wallet.state.balance(), Some(Money::new(250, Currency::EUR)));

    // A registration replayed with its key gets the same account back.
    let registration =
        json!({"email": "once@example.com", "password": "a long password", "name": "Once"});
    let key = [("Idempotency-Key", "register-once")];
    let one = api
        .send(
            Method::POST,
            "/api/v1/accounts",
            None,
            Some(registration.clone()),
            &key,
        )
        .await;
    let two = api
        .send(
            Method::POST,
            "/api/v1/accounts",
            None,
            Some(registration),
            &key,
        )
        .await;
    assert_eq!(one.status, StatusCode::CREATED);
    assert_eq!(two.status, StatusCode::CREATED);
    assert_eq!(two.headers.get("idempotent-replayed").unwrap(), "true");
    // No token is stored: the replay carries the same account, version and position, with
    // fresh tokens of its own.
    for field in ["account_id", "version", "position"] {
        assert_eq!(two.body[field], one.body[field], "{field}");
    }
    assert!(two.body["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert_ne!(two.body["refresh_token"], one.body["refresh_token"]);
}

async fn the_same_idempotency_key_with_another_body_is_a_422(api: TestApi) {
    let account = api.register("customer").await;
    let key = [("Idempotency-Key", "deposit-2")];
    let first = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(json!({"amount": 250, "currency": "EUR"})),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let head = api.store().head_position().await.unwrap();
    let other = api
        .send(
            Method::POST,
            &deposits(&account),
            Some(&account.token),
            Some(json!({"amount": 999, "currency": "EUR"})),
            &key,
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.error(),
        (
            "this Idempotency-Key was already used with another request".to_owned(),
            Some("Idempotency-Key".to_owned())
        )
    );
    assert_eq!(api.store().head_position().await.unwrap(), head);
}

async fn a_body_over_the_limit_is_a_413(api: TestApi) {
    let seller = api.register("seller").await;
    let limit = api.test.settings.max_body_bytes;
    let big = format!(
        "{{\"name\":\"Big\",\"description\":\"{}\",\"price\":1,\"currency\":\"EUR\",\"stock\":1}}",
        "x".repeat(limit + 1)
    );
    let answer = api
        .send_raw(
            Method::POST,
            "/api/v1/products",
            Some(&seller.token),
            big.clone(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.error(),
        (format!("request body is larger than {limit} bytes"), None)
    );
    // The same through the idempotency layer.
    let keyed = api
        .client
        .post(format!("{}/api/v1/products", api.base))
        .bearer_auth(&seller.token)
        .header("Idempotency-Key", "big")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn self_registration_as_admin_or_with_a_short_password_is_a_422(api: TestApi) {
    let admin = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": "boss@example.com", "password": "long enough", "name": "B", "role": "admin"}),
        )
        .await;
    assert_eq!(admin.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (message, field) = admin.error();
    assert!(message.contains("unknown variant `admin`"), "{message}");
    assert_eq!(field.as_deref(), Some("role"));
    let short = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": "short@example.com", "password": "short", "name": "S"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        short.error(),
        (
            "password must be 8 to 1024 characters long".to_owned(),
            Some("password".to_owned())
        )
    );
    let bad_email = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": "no-at-sign", "password": "long enough", "name": "E"}),
        )
        .await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_email.error().1.as_deref(), Some("email"));
}

api_tests!(
    self_registration_as_admin_or_with_a_short_password_is_a_422,
    malformed_json_is_a_400,
    an_unknown_field_is_a_422_naming_it,
    a_wrong_type_is_a_422_naming_the_field,
    a_missing_field_is_a_422_naming_it,
    a_bad_uuid_is_refused_naming_the_field,
    zero_or_negative_amounts_and_quantities_are_422,
    an_unknown_currency_is_a_422_naming_it,
    an_over_long_string_is_a_422_naming_it,
    a_missing_or_invalid_token_is_a_401,
    a_policy_denial_is_a_403,
    an_unknown_aggregate_is_a_404,
    a_domain_conflict_is_a_409,
    a_domain_rejection_is_a_422,
    a_stale_if_match_is_a_409_with_the_current_version,
    an_idempotent_replay_returns_the_first_response_and_appends_nothing,
    the_same_idempotency_key_with_another_body_is_a_422,
    a_body_over_the_limit_is_a_413,
);
