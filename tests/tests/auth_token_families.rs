//! Refresh-token rotation with reuse detection, on both stores: presenting an already-used
//! refresh token revokes its whole token family — its successors' refresh AND access tokens
//! stop working on REST and GraphQL, in this process and in another one — while a fresh login
//! (a new family) and other accounts keep working.

use std::time::{Duration, Instant};

use eventshop_tests::api::{Answer, TestApi};
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::graphql_tests;
use reqwest::StatusCode;
use serde_json::json;

struct Pair {
    access: String,
    refresh: String,
}

async fn refresh(api: &TestApi, token: &str) -> Answer {
    api.post(
        "/api/v1/sessions/refresh",
        None,
        json!({"refresh_token": token}),
    )
    .await
}

fn pair(answer: &Answer) -> Pair {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    Pair {
        access: answer.body["access_token"].as_str().expect("access").into(),
        refresh: answer.body["refresh_token"]
            .as_str()
            .expect("refresh")
            .into(),
    }
}

async fn deposit(api: &TestApi, base: &str, id: &str, token: &str) -> StatusCode {
    api.client
        .post(format!("{base}/api/v1/accounts/{id}/deposits"))
        .bearer_auth(token)
        .json(&json!({"amount": 1, "currency": "EUR"}))
        .send()
        .await
        .expect("request sent")
        .status()
}

async fn me_refused(gql: &TestGraphql, token: &str) -> bool {
    gql.query(token, "{ me { id } }", json!({}))
        .await
        .codes()
        .contains(&"UNAUTHENTICATED".to_owned())
}

async fn reusing_a_rotated_refresh_token_revokes_its_whole_family(gql: TestGraphql) {
    let api = &gql.api;
    let ann = api.register("customer").await;
    let bob = api.register("customer").await;
    gql.project().await;
    let other = api.other_server().await;

    // Rotate twice: registration → first → second.
    let first = pair(&refresh(api, &ann.refresh).await);
    let second = pair(&refresh(api, &first.refresh).await);
    assert_eq!(
        deposit(api, &api.base, &ann.id, &second.access).await,
        StatusCode::CREATED
    );
    assert!(!me_refused(&gql, &second.access).await);
    assert_eq!(
        deposit(api, &other.base, &ann.id, &second.access).await,
        StatusCode::CREATED
    );

    // Reuse the registration's refresh token (rotated already): refused, family revoked.
    let reuse = refresh(api, &ann.refresh).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "{}", reuse.body);
    assert!(reuse.error().0.contains("already used"), "{}", reuse.body);

    // The newest refresh token of the family is refused…
    let successor = refresh(api, &second.refresh).await;
    assert_eq!(
        successor.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        successor.body
    );
    assert!(
        successor.error().0.contains("revoked"),
        "{}",
        successor.body
    );
    // …and so is every access token of the family, on REST and GraphQL.
    for access in [&ann.token, &first.access, &second.access] {
        assert_eq!(
            deposit(api, &api.base, &ann.id, access).await,
            StatusCode::UNAUTHORIZED
        );
        assert!(me_refused(&gql, access).await);
    }
    // Another process learns of it from the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while deposit(api, &other.base, &ann.id, &second.access).await != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "the other process still accepts the revoked family"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A fresh login starts a new family, which works and rotates.
    let login = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": ann.email, "password": ann.password}),
        )
        .await;
    let fresh = pair(&login);
    assert_eq!(
        deposit(api, &api.base, &ann.id, &fresh.access).await,
        StatusCode::CREATED
    );
    assert!(!me_refused(&gql, &fresh.access).await);
    let rotated = pair(&refresh(api, &fresh.refresh).await);
    assert_eq!(
        deposit(api, &other.base, &ann.id, &rotated.access).await,
        StatusCode::CREATED
    );

    // Another account's family is untouched.
    let bobs = pair(&refresh(api, &bob.refresh).await);
    assert_eq!(
        deposit(api, &api.base, &bob.id, &bobs.access).await,
        StatusCode::CREATED
    );
}

graphql_tests!(reusing_a_rotated_refresh_token_revokes_its_whole_family);
