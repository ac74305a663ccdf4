//! Managed dead letters on PostgreSQL AND SQLite: a projection parks an event that keeps
//! failing; the parked event is listed, retried (still failing, then after the cause is fixed:
//! the projection resumes) or skipped with a reason (recorded in the log: shown by `status`
//! and the audit read model). The order saga parks a poison order while the orders around it
//! are approved, and works it through once the cause is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::order::OrderStatus;
use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::saga::{settle, status, RunningSaga};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, Store, StoredEvent};
use projectors::dead_letters::{self, DeadLetterError};
use projectors::model::{ApplyError, FoldError, Plan, TableDef, Val};
use projectors::runner::{run_with, RunnerOptions};
use projectors::{read_models, Projection};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

eventshop_tests::store_tests!(
    given_an_event_that_keeps_failing_when_retried_after_the_fix_then_the_projection_resumes,
    given_a_parked_event_when_skipped_with_a_reason_then_the_projection_goes_on_and_status_and_audit_show_it,
    given_unknown_names_or_positions_when_managing_dead_letters_then_each_is_a_clear_error,
    given_a_parked_event_when_a_runner_restarts_with_fixed_code_then_it_applies_it_and_forgets_the_row,
);

mod saga {
    use super::given_a_poison_order_when_the_saga_runs_then_it_is_parked_and_the_orders_around_it_are_approved;

    eventshop_tests::api_tests!(
        given_a_poison_order_when_the_saga_runs_then_it_is_parked_and_the_orders_around_it_are_approved,
    );
}

/// The products projection with a bug that a test can fix: while `broken`, it fails on every
/// event of the product `poison` (as a projection whose code cannot handle an event does).
struct Buggy {
    inner: Arc<dyn Projection>,
    poison: String,
    broken: Arc<AtomicBool>,
}

impl Buggy {
    fn new(poison: Uuid) -> Self {
        Self {
            inner: read_models::by_name("products").expect("products"),
            poison: poison.to_string(),
            broken: Arc::new(AtomicBool::new(true)),
        }
    }

    fn fix(&self) {
        self.broken.store(false, Ordering::SeqCst);
    }
}

impl Projection for Buggy {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> i32 {
        self.inner.version()
    }
    fn entity(&self) -> Option<&'static TableDef> {
        self.inner.entity()
    }
    fn appends(&self) -> &'static [&'static TableDef] {
        self.inner.appends()
    }
    fn scrubbed(&self) -> &'static [(&'static str, &'static str)] {
        self.inner.scrubbed()
    }
    fn keys(&self, events: &[StoredEvent]) -> Vec<String> {
        self.inner.keys(events)
    }
    fn fold(
        &self,
        current: HashMap<String, Vec<Val>>,
        events: &[StoredEvent],
    ) -> Result<Plan, FoldError> {
        if self.broken.load(Ordering::SeqCst) {
            if let Some(index) = events.iter().position(|e| e.aggregate_id == self.poison) {
                return Err(FoldError {
                    index,
                    position: events[index].position,
                    error: ApplyError("the projection cannot handle this product".into()),
                });
            }
        }
        self.inner.fold(current, events)
    }
}

fn quick_options(store: &Store) -> RunnerOptions {
    RunnerOptions {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        poll: Duration::from_millis(50),
        owner: "test-runner".to_string(),
        ..RunnerOptions::for_store(store)
    }
}

/// A seller, a product before the poison one, the poison one and one after it.
struct Products {
    before: Uuid,
    poison: Uuid,
    after: Uuid,
}

async fn three_products(bus: &CommandBus) -> Products {
    let seller = eventshop_tests::projections::register(
        bus,
        &format!("s-{}@example.com", Uuid::new_v4().simple()),
        domain::account::Role::Seller,
    )
    .await;
    let before = eventshop_tests::projections::create_product(bus, seller, 1).await;
    let poison = eventshop_tests::projections::create_product(bus, seller, 2).await;
    let after = eventshop_tests::projections::create_product(bus, seller, 3).await;
    Products {
        before,
        poison,
        after,
    }
}

/// Runs `projection` alone under a runner until the returned sender is dropped or sent to.
fn start_runner(
    store: &Store,
    projection: Arc<dyn Projection>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        store.clone(),
        quick_options(store),
        vec![projection],
        async move {
            stopped.await.ok();
        },
    ));
    (stop, runner)
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn product_ids(store: &Store) -> Vec<String> {
    let filter = read_models::products::ProductFilter::default();
    read_models::products::page(&filter, None, None, 100)
        .fetch_all(store)
        .await
        .expect("products page")
        .into_iter()
        .map(|p| p.id)
        .collect()
}

async fn state_of(store: &Store) -> projectors::ProjectionStatus {
    projectors::status::status(store, "products", 1)
        .await
        .expect("status")
}

async fn given_an_event_that_keeps_failing_when_retried_after_the_fix_then_the_projection_resumes(
    test: TestStore,
) {
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let products = three_products(&bus).await;
    let buggy = Arc::new(Buggy::new(products.poison));
    let (stop, runner) = start_runner(&test.store, buggy.clone());
    eventually("the products projection is stuck", || async {
        state_of(&test.store).await.state == "stuck"
    })
    .await;

    // Listed: one parked event, with its type, error and attempts.
    let parked = dead_letters::list(&test.store, Some("products"))
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    let row = &parked[0];
    assert_eq!(
        (row.aggregate_id.as_str(), row.event_type.as_str()),
        (products.poison.to_string().as_str(), "ProductCreated")
    );
    assert!(row.error.contains("cannot handle"), "{}", row.error);
    assert_eq!(row.attempts, 2);
    assert_eq!(
        product_ids(&test.store).await,
        vec![products.before.to_string()]
    );

    // A retry before the fix fails again and keeps the event, one attempt more.
    let error = dead_letters::retry_projection(&test.store, &*buggy)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeadLetterError::StillFailing { position, .. } if *position == row.global_position),
        "{error}"
    );
    let again = dead_letters::list(&test.store, Some("products"))
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 3);

    // After the fix: applied, removed, and the running worker goes on past it.
    buggy.fix();
    let retried = dead_letters::retry_projection(&test.store, &*buggy)
        .await
        .unwrap();
    assert_eq!(retried.positions, vec![row.global_position]);
    assert!(dead_letters::list(&test.store, Some("products"))
        .await
        .unwrap()
        .is_empty());
    eventually("the product after the parked one is projected", || async {
        product_ids(&test.store)
            .await
            .contains(&products.after.to_string())
    })
    .await;
    let mut ids = product_ids(&test.store).await;
    ids.sort();
    let mut expected = vec![
        products.before.to_string(),
        products.poison.to_string(),
        products.after.to_string(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    let status = state_of(&test.store).await;
    assert_ne!(status.state, "stuck");
    assert_eq!(status.dead_letters, 0);
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

async fn given_a_parked_event_when_skipped_with_a_reason_then_the_projection_goes_on_and_status_and_audit_show_it(
    test: TestStore,
) {
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let products = three_products(&bus).await;
    let buggy = Arc::new(Buggy::new(products.poison));
    let (stop, runner) = start_runner(&test.store, buggy.clone());
    eventually("the products projection is stuck", || async {
        state_of(&test.store).await.state == "stuck"
    })
    .await;
    let position = dead_letters::list(&test.store, Some("products"))
        .await
        .unwrap()[0]
        .global_position;

    dead_letters::skip_with(
        &test.store,
        &test.settings,
        "products",
        Some(&*buggy),
        position,
        "imported by mistake",
        "cli:operator",
    )
    .await
    .unwrap();

    // The projection goes on without the skipped event.
    eventually("the product after the skipped one is projected", || async {
        product_ids(&test.store)
            .await
            .contains(&products.after.to_string())
    })
    .await;
    assert!(!product_ids(&test.store)
        .await
        .contains(&products.poison.to_string()));
    // Status shows the skip: who, what, why.
    let status = state_of(&test.store).await;
    assert_eq!(status.dead_letters, 0);
    assert_ne!(status.state, "stuck");
    assert_eq!(status.skips.len(), 1, "{status:?}");
    let skip = &status.skips[0];
    assert_eq!(skip.position, position);
    assert_eq!(skip.event_type, "ProductCreated");
    assert_eq!(skip.reason, "imported by mistake");
    assert_eq!(skip.actor.as_deref(), Some("cli:operator"));
    stop.send(()).ok();
    runner.await.unwrap().unwrap();

    // Audited: the audit read model shows who skipped what, when.
    let audit = read_models::by_name("audit").unwrap();
    projectors::catch_up(&test.store, &*audit, 500)
        .await
        .unwrap();
    let filter = read_models::audit::AuditFilter {
        actor: Some("cli:operator".into()),
        ..Default::default()
    };
    let entries = read_models::audit::page(&filter, 0, 10)
        .fetch_all(&test.store)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].event_type, "DeadLetterSkipped");
    assert_eq!(entries[0].aggregate_type, "projection");
    assert_eq!(entries[0].aggregate_id, "products");
}

async fn given_a_parked_event_when_a_runner_restarts_with_fixed_code_then_it_applies_it_and_forgets_the_row(
    test: TestStore,
) {
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let products = three_products(&bus).await;
    let buggy = Arc::new(Buggy::new(products.poison));
    let (stop, runner) = start_runner(&test.store, buggy.clone());
    eventually("the products projection is stuck", || async {
        state_of(&test.store).await.state == "stuck"
    })
    .await;
    stop.send(()).ok();
    runner.await.unwrap().unwrap();

    // The next release fixes the bug: its runner applies the event and forgets the row.
    buggy.fix();
    let (stop, runner) = start_runner(&test.store, buggy.clone());
    eventually("the product after the parked one is projected", || async {
        product_ids(&test.store)
            .await
            .contains(&products.after.to_string())
    })
    .await;
    eventually("the parked row is forgotten", || async {
        state_of(&test.store).await.dead_letters == 0
    })
    .await;
    assert!(product_ids(&test.store)
        .await
        .contains(&products.poison.to_string()));
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

async fn given_unknown_names_or_positions_when_managing_dead_letters_then_each_is_a_clear_error(
    test: TestStore,
) {
    let (store, settings) = (&test.store, &test.settings);
    let unknown = dead_letters::retry(store, settings, "nope")
        .await
        .unwrap_err();
    assert!(matches!(unknown, DeadLetterError::UnknownFollower(_)));
    assert!(unknown.to_string().contains("unknown projection 'nope'"));
    assert!(matches!(
        dead_letters::list(store, Some("nope")).await.unwrap_err(),
        DeadLetterError::UnknownFollower(_)
    ));
    assert!(matches!(
        dead_letters::retry(store, settings, "products")
            .await
            .unwrap_err(),
        DeadLetterError::NothingParked(_)
    ));
    let not_parked = dead_letters::skip(store, settings, "orders", 42, "why", "cli:x")
        .await
        .unwrap_err();
    assert_eq!(
        not_parked.to_string(),
        "orders has no parked event at position 42"
    );
    assert!(matches!(
        dead_letters::skip(store, settings, "orders", 42, "  ", "cli:x")
            .await
            .unwrap_err(),
        DeadLetterError::ReasonRequired
    ));
    // Nothing was recorded.
    assert!(store
        .history("projection", "orders")
        .await
        .unwrap()
        .is_empty());
}

/// Makes every append to `product`'s stream fail in the database (a fault the test arranges,
/// and later removes).
async fn poison_product(store: &Store, product: &str) {
    match store {
        Store::Postgres(pool) => {
            sqlx::raw_sql(&format!(
                "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.aggregate_id = '{product}' THEN \
                   RAISE EXCEPTION 'poisoned product'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER test_poison BEFORE INSERT ON events \
                   FOR EACH ROW EXECUTE FUNCTION test_poison();"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
        Store::Sqlite(pool) => {
            sqlx::raw_sql(&format!(
                "CREATE TRIGGER test_poison BEFORE INSERT ON events \
                   WHEN NEW.aggregate_id = '{product}' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned product'); END;"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn cure(store: &Store) {
    let sql = "DROP TRIGGER test_poison ON events";
    match store {
        Store::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop).unwrap(),
        Store::Sqlite(pool) => sqlx::raw_sql("DROP TRIGGER test_poison")
            .execute(pool)
            .await
            .map(drop)
            .unwrap(),
    }
}

async fn product(api: &TestApi, seller: &Account, name: &str) -> String {
    let answer = api
        .post(
            "/api/v1/products",
            Some(&seller.token),
            json!({"name": name, "description": "Steel", "price": 100,
                   "currency": "EUR", "stock": 10}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body["product_id"].as_str().unwrap().to_owned()
}

async fn given_a_poison_order_when_the_saga_runs_then_it_is_parked_and_the_orders_around_it_are_approved(
    api: TestApi,
) {
    let store = api.store().clone();
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    let answer = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", customer.id),
            Some(&customer.token),
            json!({"amount": 10_000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let kettle = product(&api, &seller, "Kettle").await;
    let cursed = product(&api, &seller, "Cursed").await;
    poison_product(&store, &cursed).await;

    let first = api.order(&customer, &[(&kettle, 1)], "EUR").await;
    let poisoned = api.order(&customer, &[(&cursed, 1)], "EUR").await;
    let last = api.order(&customer, &[(&kettle, 2)], "EUR").await;
    let saga = RunningSaga::start(&store, &api.test.settings);

    // The orders around it are approved; the poison order is parked, not retried forever.
    assert_eq!(
        settle(
            &store,
            &[first.clone(), last.clone()],
            Duration::from_secs(60)
        )
        .await,
        vec![OrderStatus::Approved, OrderStatus::Approved]
    );
    eventually("the poison order is parked", || async {
        !dead_letters::list(&store, Some(projectors::saga::NAME))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let parked = dead_letters::list(&store, Some("saga:orders"))
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].subject.as_deref(), Some(poisoned.as_str()));
    assert_eq!(parked[0].event_type, "OrderPlaced");
    assert!(parked[0].error.contains("failed"), "{}", parked[0].error);
    assert_eq!(status(&store, &poisoned).await, Some(OrderStatus::Pending));
    let saga_status = projectors::status::status(&store, projectors::saga::NAME, 0)
        .await
        .unwrap();
    assert_eq!(saga_status.dead_letters, 1);

    // A retry while the cause is still there fails and keeps it.
    let error = dead_letters::retry(&store, &api.test.settings, "saga:orders")
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeadLetterError::StillFailing { .. }),
        "{error}"
    );
    assert_eq!(
        dead_letters::list(&store, Some("saga:orders"))
            .await
            .unwrap()[0]
            .attempts,
        projectors::saga::PARK_AFTER_ATTEMPTS as i32 + 1
    );

    // Cured: the retry works the order through, and the running saga takes it from there.
    cure(&store).await;
    dead_letters::retry(&store, &api.test.settings, "saga:orders")
        .await
        .unwrap();
    assert_eq!(
        settle(
            &store,
            std::slice::from_ref(&poisoned),
            Duration::from_secs(60)
        )
        .await,
        vec![OrderStatus::Approved]
    );
    assert!(dead_letters::list(&store, Some("saga:orders"))
        .await
        .unwrap()
        .is_empty());
    saga.stop().await;
}
