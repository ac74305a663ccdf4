//! The command API's saga-free happy paths, end to end over HTTP, on both stores.

use domain::account::Account as AccountAggregate;
use domain::order::{Order, OrderStatus};
use domain::policy_set::PolicySet;
use domain::product::Product;
use domain::wallet::Wallet;
use domain::{Currency, Money, Policy};
use eventshop_tests::api::TestApi;
use eventshop_tests::api_tests;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn registration_answers_with_tokens_version_and_position_and_opens_a_wallet(api: TestApi) {
    let email = "ada@example.com";
    let answer = api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": email, "password": "a long password", "name": "Ada"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["account_id"].as_str().unwrap().to_owned();
    assert_eq!(answer.body["version"], 1);
    assert!(answer.body["position"].as_i64().unwrap() > 0);
    assert!(answer.body["access_token"].as_str().unwrap().len() > 20);
    assert!(answer.body["refresh_token"].as_str().unwrap().len() > 20);
    assert_eq!(answer.etag(), Some("\"1\""));

    let account = api
        .store()
        .load_current::<AccountAggregate>(&id)
        .await
        .unwrap();
    assert_eq!(account.state.email().unwrap().as_str(), email);
    assert_ne!(account.state.password_hash(), Some("a long password"));
    let wallet = api.store().load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(wallet.state.balance(), Some(Money::new(0, Currency::EUR)));
    let policies = api.store().load_current::<PolicySet>(&id).await.unwrap();
    let expected: Vec<Policy> = [
        format!("{id}:*:accounts:{id}"),
        format!("{id}:post:orders:*"),
    ]
    .iter()
    .map(|p| Policy::parse(p).unwrap())
    .collect();
    assert_eq!(
        policies
            .state
            .policies()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        {
            let mut e = expected;
            e.sort();
            e
        }
    );
}

async fn logging_in_issues_tokens_and_records_the_login(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": account.email, "password": account.password}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["account_id"], account.id.as_str());
    let token = answer.body["access_token"].as_str().unwrap().to_owned();
    let history = api.store().history("account", &account.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["AccountRegistered", "AccountAuthenticated"]
    );
    // The new access token works.
    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&token),
            json!({"amount": 100, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED, "{}", deposit.body);

    let wrong = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": account.email, "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.error(),
        ("invalid email or password".to_owned(), None)
    );
}

async fn a_refresh_token_buys_one_new_pair(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": account.refresh}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["account_id"], account.id.as_str());
    let token = answer.body["access_token"].as_str().unwrap();
    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(token),
            json!({"amount": 100, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED, "{}", deposit.body);

    let again = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": account.refresh}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.error().0.contains("already used"), "{}", again.body);
    // An access token is not a refresh token.
    let wrong_kind = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": account.token}),
        )
        .await;
    assert_eq!(wrong_kind.status, StatusCode::UNAUTHORIZED);
}

async fn a_deleted_account_s_tokens_stop_working(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}", account.id),
            Some(&account.token),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["account_id"], account.id.as_str());
    assert_eq!(answer.body["version"], 2);
    assert!(api
        .store()
        .load_current::<AccountAggregate>(&account.id)
        .await
        .unwrap()
        .state
        .is_deleted());

    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": 100, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::UNAUTHORIZED);
    assert_eq!(deposit.error().0, "the account was deleted");
    let refresh = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": account.refresh}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let login = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": account.email, "password": account.password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
}

async fn a_deposit_raises_the_balance(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": 10000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["account_id"], account.id.as_str());
    assert_eq!(answer.body["version"], 2);
    assert_eq!(answer.etag(), Some("\"2\""));
    let position = answer.body["position"].as_i64().unwrap();
    assert_eq!(api.store().head_position().await.unwrap(), position);
    let wallet = api
        .store()
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap();
    assert_eq!(
        wallet.state.balance(),
        Some(Money::new(10000, Currency::EUR))
    );
}

async fn a_seller_creates_patches_and_restocks_a_product(api: TestApi) {
    let seller = api.register("seller").await;
    let created = api
        .post(
            "/api/v1/products",
            Some(&seller.token),
            json!({"name": "Teapot", "description": "Blue", "price": 1390,
                   "currency": "EUR", "stock": 100}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["version"], 1);
    let id = created.body["product_id"].as_str().unwrap().to_owned();

    let patched = api
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{id}"),
            Some(&seller.token),
            Some(json!({"name": "Green teapot", "price": 1490})),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["product_id"], id.as_str());
    assert_eq!(patched.body["version"], 2);

    let restocked = api
        .post(
            &format!("/api/v1/products/{id}/restock"),
            Some(&seller.token),
            json!({"quantity": 5}),
        )
        .await;
    assert_eq!(restocked.status, StatusCode::OK, "{}", restocked.body);
    assert_eq!(restocked.body["version"], 3);

    let product = api
        .store()
        .load_current::<Product>(&id)
        .await
        .unwrap()
        .state;
    assert_eq!(product.name(), "Green teapot");
    assert_eq!(product.price(), Some(Money::new(1490, Currency::EUR)));
    assert_eq!(product.stock_on_hand(), 105);
    assert_eq!(product.seller().unwrap().to_string(), seller.id);

    // Another seller may not touch it.
    let other = api.register("seller").await;
    let denied = api
        .post(
            &format!("/api/v1/products/{id}/restock"),
            Some(&other.token),
            json!({"quantity": 5}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

async fn placing_an_order_is_accepted_and_its_customer_may_cancel_it(api: TestApi) {
    let seller = api.register("seller").await;
    let product = api.product(&seller, 1390, 10).await;
    let customer = api.register("customer").await;
    let placed = api
        .post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"items": [{"product_id": product, "quantity": 2}], "currency": "EUR"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "{}", placed.body);
    assert_eq!(placed.body["version"], 1);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let order = api
        .store()
        .load_current::<Order>(&order_id)
        .await
        .unwrap()
        .state;
    assert_eq!(order.status(), Some(OrderStatus::Pending));
    assert_eq!(order.total(), Some(Money::new(2780, Currency::EUR)));
    assert_eq!(order.account_id().unwrap().to_string(), customer.id);

    let stranger = api.register("customer").await;
    let denied = api
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&stranger.token),
            json!({}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let canceled = api
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&customer.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(canceled.status, StatusCode::OK, "{}", canceled.body);
    assert_eq!(canceled.body["order_id"], order_id.as_str());
    assert_eq!(canceled.body["version"], 2);
    let order = api
        .store()
        .load_current::<Order>(&order_id)
        .await
        .unwrap()
        .state;
    assert_eq!(order.status(), Some(OrderStatus::Canceled));
    assert_eq!(order.reason(), Some("changed my mind"));
}

async fn an_admin_grants_and_revokes_policies(api: TestApi) {
    let admin = api.admin().await;
    let customer = api.register("customer").await;
    let create = |token: String| {
        let api = &api;
        async move {
            api.post(
                "/api/v1/products",
                Some(&token),
                json!({"name": "Mug", "price": 500, "currency": "EUR", "stock": 1}),
            )
            .await
        }
    };
    assert_eq!(
        create(customer.token.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let policy = format!("{}:post:products:*", customer.id);
    let granted = api
        .send(
            Method::PUT,
            "/api/v1/policies",
            Some(&admin.token),
            Some(json!({"policy": policy})),
            &[],
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["subject"], customer.id.as_str());
    assert_eq!(granted.body["version"], 3);
    assert!(granted.body["position"].as_i64().is_some());
    assert_eq!(
        create(customer.token.clone()).await.status,
        StatusCode::CREATED
    );

    let revoked = api
        .send(
            Method::DELETE,
            "/api/v1/policies",
            Some(&admin.token),
            Some(json!({"policy": policy})),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    // Version 4 was the grant on the product the customer created.
    assert_eq!(revoked.body["version"], 5);
    assert_eq!(
        create(customer.token.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    // A customer may not grant itself anything.
    let selfish = api
        .send(
            Method::PUT,
            "/api/v1/policies",
            Some(&customer.token),
            Some(json!({"policy": format!("{}:*:*:*", customer.id)})),
            &[],
        )
        .await;
    assert_eq!(selfish.status, StatusCode::FORBIDDEN);
}

async fn health_openapi_and_metrics_are_served(api: TestApi) {
    let health = api.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");

    let doc = api
        .send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/accounts",
        "/api/v1/accounts/{id}",
        "/api/v1/accounts/{id}/deposits",
        "/api/v1/sessions",
        "/api/v1/sessions/refresh",
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/products/{id}/restock",
        "/api/v1/orders",
        "/api/v1/orders/{id}/cancel",
        "/api/v1/policies",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }

    let account = api.register("customer").await;
    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": 1, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED);
    let metrics = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            r#"eventshop_http_requests_total{method="POST",route="/api/v1/accounts/{id}/deposits",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("eventshop_http_request_duration_seconds_bucket"));
    assert!(!text.contains(&account.id), "raw paths must not be labels");
}

async fn an_unknown_route_or_method_answers_with_an_error_body(api: TestApi) {
    let missing = api
        .send(Method::GET, "/api/v1/nothing", None, None, &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error(), ("no such route".to_owned(), None));
    let method = api
        .send(Method::GET, "/api/v1/orders", None, None, &[])
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        method.error(),
        ("this route does not accept that method".to_owned(), None)
    );
}

async fn policy_changes_and_deletions_reach_another_api_process(api: TestApi) {
    let other = api.other_server().await;
    let admin = api.admin().await;
    let customer = api.register("customer").await;
    let deposit_on_other = || {
        let (api, other, customer) = (&api, &other, &customer);
        async move {
            api.client
                .post(format!(
                    "{}/api/v1/accounts/{}/deposits",
                    other.base, customer.id
                ))
                .bearer_auth(&customer.token)
                .json(&json!({"amount": 1, "currency": "EUR"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The other process loads the customer's policies on first use.
    assert_eq!(deposit_on_other().await, StatusCode::CREATED);
    let revoked = api
        .send(
            Method::DELETE,
            "/api/v1/policies",
            Some(&admin.token),
            Some(json!({"policy": format!("{0}:*:accounts:{0}", customer.id)})),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let eventually = |expected: StatusCode| {
        let deposit_on_other = &deposit_on_other;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let status = deposit_on_other().await;
                if status == expected {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still {status}, not {expected}, after 10 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    eventually(StatusCode::FORBIDDEN).await;
    let deleted = api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}", customer.id),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    eventually(StatusCode::UNAUTHORIZED).await;
}

async fn the_request_id_and_caller_are_recorded_with_the_events(api: TestApi) {
    let account = api.register("customer").await;
    let answer = api
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            Some(json!({"amount": 5, "currency": "EUR"})),
            &[("X-Request-Id", "req-42")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.headers.get("x-request-id").unwrap(), "req-42");
    let history = api.store().history("wallet", &account.id).await.unwrap();
    let deposit = history.last().unwrap();
    assert_eq!(deposit.event_type, "FundsDeposited");
    assert_eq!(deposit.metadata.actor.as_deref(), Some(account.id.as_str()));
    assert_eq!(deposit.metadata.request_id.as_deref(), Some("req-42"));
    assert_eq!(deposit.metadata.correlation_id.as_deref(), Some("req-42"));
    // Without one, the server makes one up and answers with it.
    let generated = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": 5, "currency": "EUR"}),
        )
        .await;
    let id = generated
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    let history = api.store().history("wallet", &account.id).await.unwrap();
    assert_eq!(
        history.last().unwrap().metadata.request_id.as_deref(),
        Some(id)
    );
}

api_tests!(
    the_request_id_and_caller_are_recorded_with_the_events,
    policy_changes_and_deletions_reach_another_api_process,
    an_unknown_route_or_method_answers_with_an_error_body,
    registration_answers_with_tokens_version_and_position_and_opens_a_wallet,
    logging_in_issues_tokens_and_records_the_login,
    a_refresh_token_buys_one_new_pair,
    a_deleted_account_s_tokens_stop_working,
    a_deposit_raises_the_balance,
    a_seller_creates_patches_and_restocks_a_product,
    placing_an_order_is_accepted_and_its_customer_may_cancel_it,
    an_admin_grants_and_revokes_policies,
    health_openapi_and_metrics_are_served,
);
