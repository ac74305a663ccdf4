//! `eventshop events tail --json` and `orders trace --json` print every payload in its public
//! view: a registration's password hash and a refresh token's id never reach the terminal.

use std::process::Command;

use eventshop_tests::api::TestApi;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn eventshop(api: &TestApi, args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", api.test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run eventshop");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

async fn given_a_registration_a_refresh_and_an_order_when_printed_then_no_secret_is_shown(
    api: TestApi,
) {
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    let refreshed = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": customer.refresh}),
        )
        .await;
    assert_eq!(refreshed.status.as_u16(), 200, "{}", refreshed.body);
    let product = api.product(&seller, 100, 5).await;
    let order = api.order(&customer, &[(&product, 1)], "EUR").await;

    let stored = api
        .store()
        .history("account", &customer.id)
        .await
        .expect("history");
    let hash = stored[0].payload["data"]["password_hash"]
        .as_str()
        .expect("the log keeps the hash")
        .to_owned();
    let jti = stored
        .iter()
        .find(|e| e.event_type == "RefreshTokenRevoked")
        .and_then(|e| e.payload["data"]["jti"].as_str())
        .expect("the log keeps the revoked token id")
        .to_owned();

    let tail = eventshop(&api, &["events", "tail", "--json"]);
    let trace = eventshop(&api, &["orders", "trace", &order, "--json"]);
    for (what, out) in [("events tail", &tail), ("orders trace", &trace)] {
        assert!(!out.contains("argon2"), "{what}: {out}");
        assert!(!out.contains(&hash), "{what}: {out}");
        assert!(!out.contains(&jti), "{what}: {out}");
    }
    let lines: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let registered = lines
        .iter()
        .find(|l| l["event_type"] == json!("AccountRegistered"))
        .expect("a registration");
    assert!(registered["payload"]["data"]["email"].is_string());
    assert!(registered["payload"]["data"].get("password_hash").is_none());
    assert!(trace.lines().count() >= 2, "{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_and_orders_trace_show_no_secrets_on_postgres() {
    given_a_registration_a_refresh_and_an_order_when_printed_then_no_secret_is_shown(
        TestApi::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_and_orders_trace_show_no_secrets_on_sqlite() {
    given_a_registration_a_refresh_and_an_order_when_printed_then_no_secret_is_shown(
        TestApi::sqlite().await,
    )
    .await;
}
