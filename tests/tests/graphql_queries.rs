//! End-to-end tests of the GraphQL read side over HTTP, on PostgreSQL and SQLite: a scripted
//! run (register, deposit, products, an order driven by the order saga, a cancel, a policy
//! change), then each query's answer — current, `asOf`, `atVersion`, history, audit —
//! and what a caller's policies let it see.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::order::OrderStatus;
use eventshop_tests::api::Account;
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::graphql_tests;
use eventshop_tests::saga::{saga_caught_up, status, step_until};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// What the scripted run produced.
struct Script {
    admin: Account,
    alice: Account,
    bob: Account,
    /// Alice's order, approved: PENDING at `order_times[0]`, AWAITING_PAYMENT at `[1]`,
    /// APPROVED at `[2]`.
    alice_order: String,
    order_times: Vec<DateTime<Utc>>,
    /// Bob's order, canceled by Bob.
    bob_order: String,
    /// 1390 EUR, stock 10; Alice ordered 2.
    teapot: String,
    teapot_created: DateTime<Utc>,
    teapot_reserved: DateTime<Utc>,
    /// When the admin had granted Bob `get` on Alice's order (revoked since).
    granted_at: DateTime<Utc>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn pause() {
    // Successive events get distinct timestamps (SQLite records milliseconds).
    tokio::time::sleep(Duration::from_millis(15)).await;
}

async fn recorded_at(gql: &TestGraphql, aggregate_type: &str, id: &str) -> Vec<DateTime<Utc>> {
    gql.store()
        .history(aggregate_type, id)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.recorded_at)
        .collect()
}

async fn script(gql: &TestGraphql) -> Script {
    let api = &gql.api;
    let admin = api.admin().await;
    let alice = api.register("customer").await;
    let bob = api.register("customer").await;
    let seller = api.register("seller").await;
    pause().await; // the deposit gets a later time than the wallet's opening
    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", alice.id),
            Some(&alice.token),
            json!({"amount": 10000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status.as_u16(), 201, "{}", deposit.body);
    let teapot = api.product(&seller, 1390, 10).await;
    let _mug = api.product(&seller, 500, 0).await;
    pause().await;

    let alice_order = api.order(&alice, &[(&teapot, 2)], "EUR").await;
    pause().await;

    // The saga drives the order, stepped by hand so that each status gets its own time.
    let (store, settings) = (api.store(), &api.test.settings);
    let reached = |wanted: OrderStatus| {
        let order = alice_order.clone();
        move || {
            let order = order.clone();
            async move { status(store, &order).await == Some(wanted) }
        }
    };
    step_until(store, settings, reached(OrderStatus::AwaitingPayment)).await;
    pause().await;
    step_until(store, settings, reached(OrderStatus::Approved)).await;
    step_until(store, settings, || saga_caught_up(store)).await;

    let bob_order = api.order(&bob, &[(&teapot, 1)], "EUR").await;
    let canceled = api
        .post(
            &format!("/api/v1/orders/{bob_order}/cancel"),
            Some(&bob.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(canceled.status.as_u16(), 200, "{}", canceled.body);
    step_until(store, settings, || saga_caught_up(store)).await;
    assert_eq!(status(store, &bob_order).await, Some(OrderStatus::Canceled));

    // A policy change: Bob may read Alice's order for a while.
    let policy = json!({"policy": format!("{}:get:orders:{alice_order}", bob.id)});
    let granted = api
        .send(
            Method::PUT,
            "/api/v1/policies",
            Some(&admin.token),
            Some(policy.clone()),
            &[],
        )
        .await;
    assert_eq!(granted.status.as_u16(), 200, "{}", granted.body);
    pause().await;
    let revoked = api
        .send(
            Method::DELETE,
            "/api/v1/policies",
            Some(&admin.token),
            Some(policy),
            &[],
        )
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.body);
    gql.project().await;

    let order_times = recorded_at(gql, "order", &alice_order).await;
    assert_eq!(order_times.len(), 3, "placed, awaiting payment, approved");
    let teapot_times = recorded_at(gql, "product", &teapot).await;
    let bob_policies = recorded_at(gql, "policy_set", &bob.id).await;
    Script {
        admin,
        alice,
        bob,
        alice_order,
        order_times,
        bob_order,
        teapot,
        teapot_created: teapot_times[0],
        teapot_reserved: teapot_times[1],
        granted_at: bob_policies[bob_policies.len() - 2],
    }
}

const ORDER: &str = "query($id: ID!, $asOf: DateTime, $v: Int) {
  order(id: $id, asOf: $asOf, atVersion: $v) {
    id accountId status version total { amount currency }
    items { productId quantity unitPrice { amount currency } }
  }
}";

async fn an_order_answers_with_its_current_state_and_its_products(gql: TestGraphql) {
    let s = script(&gql).await;
    let answer = gql
        .query(
            &s.alice.token,
            "query($id: ID!) { order(id: $id) { id accountId status version
               total { amount currency }
               items { quantity product { id name price { amount } stockOnHand stockReserved } } } }",
            json!({"id": s.alice_order}),
        )
        .await;
    let order = &answer.data()["order"];
    assert_eq!(order["id"], json!(s.alice_order));
    assert_eq!(order["accountId"], json!(s.alice.id));
    assert_eq!(order["status"], json!("APPROVED"));
    assert_eq!(order["version"], json!(3));
    assert_eq!(order["total"], json!({"amount": 2780, "currency": "EUR"}));
    let product = &order["items"][0]["product"];
    assert_eq!(order["items"][0]["quantity"], json!(2));
    assert_eq!(product["id"], json!(s.teapot));
    assert_eq!(product["price"]["amount"], json!(1390));
    assert_eq!(product["stockOnHand"], json!(8));
    assert_eq!(product["stockReserved"], json!(0));
}

async fn an_order_as_of_three_times_shows_pending_awaiting_payment_and_approved(gql: TestGraphql) {
    let s = script(&gql).await;
    let mut seen = Vec::new();
    for t in &s.order_times {
        let answer = gql
            .query(
                &s.alice.token,
                ORDER,
                json!({"id": s.alice_order, "asOf": rfc3339(*t)}),
            )
            .await;
        seen.push(answer.data()["order"]["status"].clone());
    }
    assert_eq!(
        seen,
        vec![
            json!("PENDING"),
            json!("AWAITING_PAYMENT"),
            json!("APPROVED")
        ]
    );
    let before = s.order_times[0] - chrono::Duration::milliseconds(1);
    let answer = gql
        .query(
            &s.alice.token,
            ORDER,
            json!({"id": s.alice_order, "asOf": rfc3339(before)}),
        )
        .await;
    assert_eq!(answer.codes(), vec!["NOT_FOUND"], "{}", answer.body);
    assert_eq!(answer.body["data"]["order"], Value::Null);
}

async fn at_version_agrees_with_as_of(gql: TestGraphql) {
    let s = script(&gql).await;
    for (i, t) in s.order_times.iter().enumerate() {
        let by_time = gql
            .query(
                &s.alice.token,
                ORDER,
                json!({"id": s.alice_order, "asOf": rfc3339(*t)}),
            )
            .await;
        let by_version = gql
            .query(
                &s.alice.token,
                ORDER,
                json!({"id": s.alice_order, "v": i + 1}),
            )
            .await;
        assert_eq!(by_time.data(), by_version.data());
        assert_eq!(by_version.data()["order"]["version"], json!(i + 1));
    }
    let query = "query($id: ID!, $asOf: DateTime, $v: Int) {
        wallet(accountId: $id, asOf: $asOf, atVersion: $v) {
          accountId version balance { amount currency } transactions { kind amount { amount } } } }";
    let wallet_times = recorded_at(&gql, "wallet", &s.alice.id).await;
    for (i, t) in wallet_times.iter().enumerate() {
        let by_time = gql
            .query(
                &s.alice.token,
                query,
                json!({"id": s.alice.id, "asOf": rfc3339(*t)}),
            )
            .await;
        let by_version = gql
            .query(&s.alice.token, query, json!({"id": s.alice.id, "v": i + 1}))
            .await;
        assert_eq!(
            by_time.data(),
            by_version.data(),
            "wallet version {}",
            i + 1
        );
    }
    let beyond = gql
        .query(&s.alice.token, ORDER, json!({"id": s.alice_order, "v": 4}))
        .await;
    assert_eq!(beyond.codes(), vec!["NOT_FOUND"]);
    let both = gql
        .query(
            &s.alice.token,
            ORDER,
            json!({"id": s.alice_order, "v": 1, "asOf": rfc3339(s.order_times[0])}),
        )
        .await;
    assert_eq!(both.codes(), vec!["BAD_USER_INPUT"]);
}

async fn products_as_of_a_past_time_show_past_stock(gql: TestGraphql) {
    let s = script(&gql).await;
    let query = "query($asOf: DateTime) { products(asOf: $asOf, first: 10) {
        edges { node { id stockOnHand stockReserved stockAvailable version } } } }";
    let stock = |answer: &Value| -> Value {
        answer["products"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| &e["node"])
            .find(|n| n["id"] == json!(s.teapot))
            .cloned()
            .expect("the teapot is listed")
    };
    let created = gql
        .query(
            &s.bob.token,
            query,
            json!({"asOf": rfc3339(s.teapot_created)}),
        )
        .await;
    assert_eq!(
        stock(created.data()),
        json!({"id": s.teapot, "stockOnHand": 10, "stockReserved": 0, "stockAvailable": 10, "version": 1})
    );
    let reserved = gql
        .query(
            &s.bob.token,
            query,
            json!({"asOf": rfc3339(s.teapot_reserved)}),
        )
        .await;
    assert_eq!(
        stock(reserved.data()),
        json!({"id": s.teapot, "stockOnHand": 10, "stockReserved": 2, "stockAvailable": 8, "version": 2})
    );
    let now = gql.query(&s.bob.token, query, json!({})).await;
    let current = stock(now.data());
    assert_eq!(current["stockOnHand"], json!(8));
    assert_eq!(current["stockReserved"], json!(0));
    let before_any = s.teapot_created - chrono::Duration::milliseconds(1);
    let empty = gql
        .query(&s.bob.token, query, json!({"asOf": rfc3339(before_any)}))
        .await;
    let listed = empty.data()["products"]["edges"].as_array().expect("edges");
    assert!(listed.iter().all(|e| e["node"]["id"] != json!(s.teapot)));
}

async fn products_are_paged_with_cursors(gql: TestGraphql) {
    let s = script(&gql).await;
    let query = "query($after: String) { products(first: 1, after: $after) {
        pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }";
    let first = gql.query(&s.alice.token, query, json!({})).await;
    let page = &first.data()["products"];
    assert_eq!(page["pageInfo"]["hasNextPage"], json!(true));
    let cursor = page["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let second = gql
        .query(&s.alice.token, query, json!({"after": cursor}))
        .await;
    let page2 = &second.data()["products"];
    assert_eq!(page2["pageInfo"]["hasNextPage"], json!(false));
    assert_ne!(
        page["edges"][0]["node"]["id"],
        page2["edges"][0]["node"]["id"]
    );
    let too_many = gql
        .query(
            &s.alice.token,
            "{ products(first: 1000) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(too_many.codes(), vec!["BAD_USER_INPUT"]);
}

async fn a_customer_cannot_read_or_list_another_customers_order(gql: TestGraphql) {
    let s = script(&gql).await;
    let answer = gql
        .query(&s.bob.token, ORDER, json!({"id": s.alice_order}))
        .await;
    assert_eq!(answer.codes(), vec!["FORBIDDEN"], "{}", answer.body);
    assert_eq!(answer.body["data"]["order"], Value::Null);
    let at_version = gql
        .query(&s.bob.token, ORDER, json!({"id": s.alice_order, "v": 1}))
        .await;
    assert_eq!(at_version.codes(), vec!["FORBIDDEN"]);
    let history = gql
        .query(
            &s.bob.token,
            "query($id: ID!) { history(aggregateType: \"order\", aggregateId: $id) { version } }",
            json!({"id": s.alice_order}),
        )
        .await;
    assert_eq!(history.codes(), vec!["FORBIDDEN"]);

    let list = "query($account: ID) { orders(accountId: $account, first: 100) {
        edges { node { id status } } } }";
    let bobs = gql.query(&s.bob.token, list, json!({})).await;
    assert_eq!(
        bobs.data()["orders"]["edges"],
        json!([{"node": {"id": s.bob_order, "status": "CANCELED"}}])
    );
    let filtered = gql
        .query(&s.bob.token, list, json!({"account": s.alice.id}))
        .await;
    assert_eq!(filtered.data()["orders"]["edges"], json!([]));
    let canceled = gql
        .query(
            &s.admin.token,
            "{ orders(status: CANCELED) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        canceled.data()["orders"]["edges"],
        json!([{"node": {"id": s.bob_order}}])
    );
    let all = gql.query(&s.admin.token, list, json!({})).await;
    let ids: Vec<&Value> = all.data()["orders"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&&json!(s.alice_order)) && ids.contains(&&json!(s.bob_order)));
    let wallet = gql
        .query(
            &s.bob.token,
            "query($id: ID!) { wallet(accountId: $id) { version } }",
            json!({"id": s.alice.id}),
        )
        .await;
    assert_eq!(wallet.codes(), vec!["FORBIDDEN"]);
}

async fn a_policy_change_shows_in_policies_and_can_as_of_its_time(gql: TestGraphql) {
    let s = script(&gql).await;
    let grant = format!("{}:get:orders:{}", s.bob.id, s.alice_order);
    let query = "query($subject: String!, $order: String!, $asOf: DateTime) {
        policies(subject: $subject, asOf: $asOf) { subject policies version }
        can(subject: $subject, action: \"get\", resourceType: \"orders\", resourceId: $order, asOf: $asOf) }";
    let vars = |as_of: Option<DateTime<Utc>>| json!({"subject": s.bob.id, "order": s.alice_order, "asOf": as_of.map(rfc3339)});
    let then = gql
        .query(&s.admin.token, query, vars(Some(s.granted_at)))
        .await;
    assert!(then.data()["policies"]["policies"]
        .as_array()
        .expect("policies")
        .contains(&json!(grant)));
    assert_eq!(then.data()["can"], json!(true));
    let now = gql.query(&s.bob.token, query, vars(None)).await;
    assert!(!now.data()["policies"]["policies"]
        .as_array()
        .expect("policies")
        .contains(&json!(grant)));
    assert_eq!(now.data()["can"], json!(false));
    let others = gql
        .query(
            &s.alice.token,
            "query($s: String!) { policies(subject: $s) { version } }",
            json!({"s": s.bob.id}),
        )
        .await;
    assert_eq!(others.codes(), vec!["FORBIDDEN"]);
}

async fn a_grant_or_revoke_takes_effect_on_the_next_query(gql: TestGraphql) {
    let s = script(&gql).await;
    let read = || gql.query(&s.bob.token, ORDER, json!({"id": s.alice_order}));
    assert_eq!(read().await.codes(), vec!["FORBIDDEN"]);
    let policy = json!({"policy": format!("{}:get:orders:{}", s.bob.id, s.alice_order)});
    let granted = gql
        .api
        .send(
            Method::PUT,
            "/api/v1/policies",
            Some(&s.admin.token),
            Some(policy.clone()),
            &[],
        )
        .await;
    assert_eq!(granted.status.as_u16(), 200, "{}", granted.body);
    assert_eq!(read().await.data()["order"]["id"], json!(s.alice_order));
    let revoked = gql
        .api
        .send(
            Method::DELETE,
            "/api/v1/policies",
            Some(&s.admin.token),
            Some(policy),
            &[],
        )
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.body);
    assert_eq!(read().await.codes(), vec!["FORBIDDEN"]);
}

async fn history_lists_an_orders_events_with_metadata(gql: TestGraphql) {
    let s = script(&gql).await;
    let answer = gql
        .query(
            &s.alice.token,
            "query($id: ID!) { history(aggregateType: \"order\", aggregateId: $id) {
               position aggregateType aggregateId version eventType recordedAt actor correlationId payload } }",
            json!({"id": s.alice_order}),
        )
        .await;
    let events = answer.data()["history"].as_array().expect("events").clone();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["OrderPlaced", "OrderAwaitingPayment", "OrderApproved"]
    );
    assert_eq!(events[0]["actor"], json!(s.alice.id));
    assert_eq!(events[0]["payload"]["type"], json!("OrderPlaced"));
    assert_eq!(
        events[0]["payload"]["data"]["order_id"],
        json!(s.alice_order)
    );
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let unknown = gql
        .query(
            &s.alice.token,
            "{ history(aggregateType: \"basket\", aggregateId: \"x\") { version } }",
            json!({}),
        )
        .await;
    assert_eq!(unknown.codes(), vec!["BAD_USER_INPUT"]);
}

const AUDIT: &str = "query($actor: String, $type: String, $id: String, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  audit(actor: $actor, resourceType: $type, resourceId: $id, from: $from, to: $to, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { position actor eventType aggregateType aggregateId version recordedAt } } } }";

async fn audit_lists_an_actors_commands_in_order(gql: TestGraphql) {
    let s = script(&gql).await;
    let answer = gql
        .query(
            &s.alice.token,
            AUDIT,
            json!({"actor": s.alice.id, "first": 100}),
        )
        .await;
    let nodes: Vec<Value> = answer.data()["audit"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert!(nodes.iter().all(|n| n["actor"] == json!(s.alice.id)));
    let positions: Vec<i64> = nodes
        .iter()
        .map(|n| n["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let types: Vec<&str> = nodes
        .iter()
        .map(|n| n["eventType"].as_str().unwrap())
        .collect();
    let registered = types
        .iter()
        .position(|t| *t == "AccountRegistered")
        .expect("registered");
    let deposited = types
        .iter()
        .position(|t| *t == "FundsDeposited")
        .expect("deposited");
    let placed = types
        .iter()
        .position(|t| *t == "OrderPlaced")
        .expect("placed");
    assert!(registered < deposited && deposited < placed, "{types:?}");
    // The saga's steps were the system's, not Alice's.
    assert!(!types.contains(&"OrderApproved"));

    // Paging: one at a time yields the same sequence.
    let mut after: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let page = gql
            .query(
                &s.alice.token,
                AUDIT,
                json!({"actor": s.alice.id, "first": 2, "after": after}),
            )
            .await;
        let audit = &page.data()["audit"];
        for edge in audit["edges"].as_array().expect("edges") {
            paged.push(edge["node"]["position"].as_i64().unwrap());
        }
        if audit["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = audit["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, positions);

    // By resource and time window.
    let by_order = gql
        .query(
            &s.admin.token,
            AUDIT,
            json!({"type": "orders", "id": s.alice_order,
                   "from": rfc3339(s.order_times[1]), "to": rfc3339(s.order_times[2])}),
        )
        .await;
    let types: Vec<Value> = by_order.data()["audit"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["eventType"].clone())
        .collect();
    assert_eq!(
        types,
        vec![json!("OrderAwaitingPayment"), json!("OrderApproved")]
    );

    let others = gql
        .query(&s.bob.token, AUDIT, json!({"actor": s.alice.id}))
        .await;
    assert_eq!(others.codes(), vec!["FORBIDDEN"]);
}

async fn the_audit_index_the_cli_prints_filters_by_actor_resource_and_time(gql: TestGraphql) {
    let s = script(&gql).await;
    let store = gql.store();
    let everything = query_api::audit(store, &query_api::AuditFilter::default(), 0, 1000)
        .await
        .expect("audit");
    let head = store.head_position().await.expect("head");
    assert_eq!(everything.last().map(|e| e.position), Some(head));
    let alices = query_api::AuditFilter {
        actor: Some(s.alice.id.clone()),
        ..Default::default()
    };
    let by_actor = query_api::audit(store, &alices, 0, 1000)
        .await
        .expect("audit");
    let expected: Vec<_> = everything
        .iter()
        .filter(|e| e.actor.as_deref() == Some(s.alice.id.as_str()))
        .cloned()
        .collect();
    assert_eq!(by_actor, expected);
    let window = query_api::AuditFilter {
        resource_type: Some("order".into()),
        resource_id: Some(s.alice_order.clone()),
        from: Some(s.order_times[0]),
        to: Some(s.order_times[1]),
        ..Default::default()
    };
    let types: Vec<String> = query_api::audit(store, &window, 0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["OrderPlaced", "OrderAwaitingPayment"]);
    let after_first = query_api::audit(store, &alices, by_actor[0].position, 1)
        .await
        .expect("audit");
    assert_eq!(after_first, by_actor[1..2]);
}

async fn me_wallet_and_projections_answer_for_their_callers(gql: TestGraphql) {
    let s = script(&gql).await;
    let me = gql
        .query(&s.alice.token, "{ me { id email role } }", json!({}))
        .await;
    assert_eq!(
        me.data()["me"],
        json!({"id": s.alice.id, "email": s.alice.email, "role": "customer"})
    );
    let wallet = gql
        .query(
            &s.alice.token,
            "query($id: ID!) { wallet(accountId: $id) { balance { amount currency }
               account { id email } transactions { kind orderId amount { amount } } } }",
            json!({"id": s.alice.id}),
        )
        .await;
    assert_eq!(
        wallet.data()["wallet"],
        json!({
            "balance": {"amount": 7220, "currency": "EUR"},
            "account": {"id": s.alice.id, "email": s.alice.email},
            "transactions": [
                {"kind": "deposit", "orderId": null, "amount": {"amount": 10000}},
                {"kind": "capture", "orderId": s.alice_order, "amount": {"amount": 2780}},
            ],
        })
    );
    let projections = gql
        .query(
            &s.admin.token,
            "{ projections { name position lag state } }",
            json!({}),
        )
        .await;
    let list = projections.data()["projections"]
        .as_array()
        .expect("list")
        .clone();
    for name in query_api::consistency::READ_MODELS {
        let p = list
            .iter()
            .find(|p| p["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} listed: {list:?}"));
        assert_eq!(p["lag"], json!(0), "{p}");
    }
    let denied = gql
        .query(&s.alice.token, "{ projections { name } }", json!({}))
        .await;
    assert_eq!(denied.codes(), vec!["FORBIDDEN"]);
}

async fn errors_carry_codes_for_unauthenticated_missing_and_malformed_requests(gql: TestGraphql) {
    let s = script(&gql).await;
    let anonymous = gql
        .send(None, ORDER, json!({"id": s.alice_order}), &[])
        .await;
    assert_eq!(anonymous.codes(), vec!["UNAUTHENTICATED"]);
    let forged = gql
        .send(
            Some("not-a-token"),
            ORDER,
            json!({"id": s.alice_order}),
            &[],
        )
        .await;
    assert_eq!(forged.codes(), vec!["UNAUTHENTICATED"]);
    let missing = gql
        .query(
            &s.admin.token,
            ORDER,
            json!({"id": Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(missing.codes(), vec!["NOT_FOUND"]);
    let malformed = gql
        .query(&s.admin.token, ORDER, json!({"id": "not-a-uuid"}))
        .await;
    assert_eq!(malformed.codes(), vec!["BAD_USER_INPUT"]);
    let unknown_field = gql
        .query(&s.admin.token, "{ order(id: \"x\") { colour } }", json!({}))
        .await;
    assert_eq!(unknown_field.codes(), vec!["BAD_USER_INPUT"]);
}

async fn too_deep_or_too_complex_queries_are_rejected(gql: TestGraphql) {
    let s = script(&gql).await;
    // Introspection that multiplies the schema by itself (types > fields > type > fields > …)
    // is refused; no path of the schema itself is deeper than 12 (see `query_api::shape`).
    let deep = format!(
        "{{ __type(name: \"Query\") {{ {} name {} }} }}",
        "fields { type { ".repeat(6),
        "} } ".repeat(6)
    );
    let answer = gql.query(&s.alice.token, &deep, json!({})).await;
    assert_eq!(answer.codes(), vec!["BAD_USER_INPUT"], "{}", answer.body);
    assert!(
        answer.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested lists"),
        "{}",
        answer.body
    );
    assert!(answer.body.get("data").is_none_or(Value::is_null));
    // Nine levels of ofType, as stock clients send, are within the limit.
    let shallow = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(9),
        "} ".repeat(9)
    );
    let answer = gql.query(&s.alice.token, &shallow, json!({})).await;
    assert!(answer.data()["__schema"]["types"].is_array());

    let page = "edges { node { id name description price { amount currency } stockOnHand
        stockReserved stockAvailable version sellerId } }";
    let complex = format!(
        "{{ a: products(first: 100) {{ {page} }} b: products(first: 100) {{ {page} }}
           c: products(first: 100) {{ {page} }} d: products(first: 100) {{ {page} }} }}"
    );
    let answer = gql.query(&s.alice.token, &complex, json!({})).await;
    assert_eq!(answer.codes(), vec!["BAD_USER_INPUT"], "{}", answer.body);
    assert!(answer.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("too complex"));
    // The same selection once is within the limits.
    let one = format!("{{ products(first: 100) {{ {page} }} }}");
    let answer = gql.query(&s.alice.token, &one, json!({})).await;
    assert_eq!(
        answer.data()["products"]["edges"].as_array().map(Vec::len),
        Some(2)
    );
}

graphql_tests!(
    an_order_answers_with_its_current_state_and_its_products,
    an_order_as_of_three_times_shows_pending_awaiting_payment_and_approved,
    at_version_agrees_with_as_of,
    products_as_of_a_past_time_show_past_stock,
    products_are_paged_with_cursors,
    a_customer_cannot_read_or_list_another_customers_order,
    a_policy_change_shows_in_policies_and_can_as_of_its_time,
    a_grant_or_revoke_takes_effect_on_the_next_query,
    history_lists_an_orders_events_with_metadata,
    audit_lists_an_actors_commands_in_order,
    the_audit_index_the_cli_prints_filters_by_actor_resource_and_time,
    me_wallet_and_projections_answer_for_their_callers,
    errors_carry_codes_for_unauthenticated_missing_and_malformed_requests,
    too_deep_or_too_complex_queries_are_rejected,
);
