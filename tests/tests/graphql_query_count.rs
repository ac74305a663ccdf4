//! A page of orders with their items' products costs the same number of read-model statements
//! whatever its size: the DataLoaders fetch every product of a page at once.
//!
//! The statement counter is per process, so this file holds one test that runs both stores in
//! turn (nothing else in this test binary runs queries meanwhile).

use eventshop_tests::graphql::TestGraphql;
use serde_json::json;

const PAGE: &str = "query($n: Int) { orders(first: $n) { edges { node {
    id items { quantity product { id name price { amount } } } } } } }";

/// Places `orders` orders for one customer, each for two units of its own product, and returns
/// the statements run by a page of 1 and by a page of all of them.
async fn statements_per_page(gql: TestGraphql, orders: usize) -> (u64, u64) {
    let api = &gql.api;
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    for i in 0..orders {
        let product = api.product(&seller, 100 + i as i64, 5).await;
        api.order(&customer, &[(&product, 2)], "EUR").await;
    }
    gql.project().await;
    let mut counts = Vec::new();
    for n in [1, orders, 1, orders] {
        let before = query_api::statements_run();
        let answer = gql.query(&customer.token, PAGE, json!({"n": n})).await;
        let used = query_api::statements_run() - before;
        let edges = answer.data()["orders"]["edges"]
            .as_array()
            .expect("edges")
            .clone();
        assert_eq!(edges.len(), n, "{}", answer.body);
        assert!(edges
            .iter()
            .all(|e| e["node"]["items"][0]["product"]["name"]
                .as_str()
                .is_some_and(|name| !name.is_empty())));
        let products: std::collections::BTreeSet<String> = edges
            .iter()
            .map(|e| e["node"]["items"][0]["product"]["id"].to_string())
            .collect();
        assert_eq!(products.len(), n, "each order has its own product");
        counts.push(used);
    }
    // The first two requests warm the caller's policy cache; the last two are compared.
    (counts[2], counts[3])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_orders_with_their_products_costs_the_same_statements_at_any_size() {
    for (store, gql) in [
        ("postgres", TestGraphql::postgres().await),
        ("sqlite", TestGraphql::sqlite().await),
    ] {
        let (one, ten) = statements_per_page(gql, 10).await;
        assert!(one > 0, "{store}: the counter counts");
        assert_eq!(
            one, ten,
            "{store}: a page of 10 orders ran {ten} statements, a page of 1 ran {one}"
        );
    }
}
