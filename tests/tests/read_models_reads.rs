//! The read models' typed reads, run directly (as the CLI and the console do), on PostgreSQL
//! AND SQLite: after the scripted command sequence each read answers the scripted state, and
//! `asOf` reads answer the row version valid at that time.

use eventshop_tests::projections::{catch_up_all, run_script};
use eventshop_tests::TestStore;
use eventstore_config::CommandBus;
use projectors::read_models::{accounts, audit, orders, policies, products, wallets};

eventshop_tests::store_tests!(
    each_typed_read_answers_the_scripted_state,
    an_as_of_read_answers_the_version_valid_then,
);

async fn each_typed_read_answers_the_scripted_state(test: TestStore) {
    // Given the scripted commands, projected.
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let script = run_script(&bus).await;
    catch_up_all(&test.store).await;
    let store = &test.store;

    // When each read model is read through its typed reads, then it answers the script.
    let deleted = accounts::by_id(&script.deleted.to_string(), None)
        .fetch_optional(store)
        .await
        .expect("account")
        .expect("the deleted account is still a row");
    assert!(deleted.deleted);
    let both = accounts::by_ids(
        &[script.customer.to_string(), script.seller.to_string()],
        None,
    )
    .fetch_all(store)
    .await
    .expect("accounts");
    assert_eq!(both.len(), 2);

    let product = products::by_ids(&[script.product.to_string()], None)
        .fetch_all(store)
        .await
        .expect("products");
    assert_eq!(product.len(), 1);
    assert_eq!(product[0].price_amount, 1500);
    assert_eq!(
        product[0].stock_available,
        product[0].stock_on_hand - product[0].stock_reserved
    );

    let mine = orders::OrderFilter {
        account_id: Some(script.customer.to_string()),
        ..Default::default()
    };
    let page = orders::page(&mine, None, None, 10)
        .fetch_all(store)
        .await
        .expect("orders");
    let ids: Vec<&str> = page.iter().map(|o| o.id.as_str()).collect();
    assert!(ids.contains(&script.approved.to_string().as_str()));
    assert!(ids.contains(&script.canceled.to_string().as_str()));
    let canceled = orders::by_id(&script.canceled.to_string(), None)
        .fetch_optional(store)
        .await
        .expect("order")
        .expect("the canceled order");
    assert_eq!(canceled.status, domain::order::OrderStatus::Canceled);
    assert_eq!(canceled.items.len(), 1);
    let only_canceled = orders::OrderFilter {
        status: Some(domain::order::OrderStatus::Canceled),
        ..mine
    };
    let page = orders::page(&only_canceled, None, None, 10)
        .fetch_all(store)
        .await
        .expect("orders by status");
    assert!(page
        .iter()
        .all(|o| o.status == domain::order::OrderStatus::Canceled));

    let wallet = wallets::by_account(&script.customer.to_string(), None)
        .fetch_optional(store)
        .await
        .expect("wallet")
        .expect("the customer's wallet");
    let moves = wallets::transactions(&script.customer.to_string(), 0, wallet.last_position, 100)
        .fetch_all(store)
        .await
        .expect("transactions");
    let net: i64 = moves
        .iter()
        .map(|m| match m.kind.as_str() {
            "capture" => -m.amount,
            "decline" => 0,
            _ => m.amount,
        })
        .sum();
    assert_eq!(net, wallet.balance);

    let set = policies::by_subject(&script.customer.to_string(), None)
        .fetch_optional(store)
        .await
        .expect("policies")
        .expect("the customer's policies");
    assert_eq!(set.policies, vec![script.policy.clone()]);

    let by_customer = audit::AuditFilter {
        actor: Some(script.customer.to_string()),
        ..Default::default()
    };
    let entries = audit::page(&by_customer, 0, 1000)
        .fetch_all(store)
        .await
        .expect("audit");
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e.actor.as_deref() == Some(script.customer.to_string().as_str())));
    assert!(entries
        .windows(2)
        .all(|w| w[0].global_position < w[1].global_position));
}

async fn an_as_of_read_answers_the_version_valid_then(test: TestStore) {
    // Given a product created, then restocked and repriced later.
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let script = run_script(&bus).await;
    catch_up_all(&test.store).await;
    let id = script.product.to_string();
    let versions = products::by_ids(std::slice::from_ref(&id), None)
        .fetch_all(&test.store)
        .await
        .expect("current");
    let current = versions.first().expect("the product");
    assert!(current.version > 1);

    // When it is read as of a time before it existed, and as of now,
    let before = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let then = products::by_ids(std::slice::from_ref(&id), Some(before))
        .fetch_all(&test.store)
        .await
        .expect("as of 2000");
    let now = products::by_ids(std::slice::from_ref(&id), Some(chrono::Utc::now()))
        .fetch_all(&test.store)
        .await
        .expect("as of now");

    // then it is absent before and the current version now.
    assert!(then.is_empty());
    assert_eq!(now, versions);
}
