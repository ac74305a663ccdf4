//! Helpers for the projector suites: a scripted command sequence that touches every read model
//! (driven through the `CommandBus` with domain commands), waiting for projections, and dumps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountServices, Role};
use domain::order::{Order, OrderCommand, OrderLine};
use domain::policy_set::{PolicySet, PolicySetCommand};
use domain::product::{Product, ProductCommand};
use domain::wallet::{Wallet, WalletCommand};
use domain::{Currency, Email, Money, Policy, Quantity};
use eventstore_config::{CommandBus, EventMetadata, SqlEmailRegistry, Store};
use projectors::model::Val;
use uuid::Uuid;

/// Ids the script created.
#[derive(Debug, Clone)]
pub struct Script {
    /// A customer who deposits, orders twice (one approved, one canceled) and logs in.
    pub customer: Uuid,
    /// A seller who creates the product.
    pub seller: Uuid,
    /// An account that is deleted.
    pub deleted: Uuid,
    /// The product.
    pub product: Uuid,
    /// The approved order (2 × 1500).
    pub approved: Uuid,
    /// The canceled order (1 × 1500).
    pub canceled: Uuid,
    /// The policy granted to the customer (and kept).
    pub policy: String,
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).expect("quantity")
}

/// Registers an account and opens its wallet.
pub async fn register(bus: &CommandBus, email: &str, role: Role) -> Uuid {
    let id = Uuid::now_v7();
    let services = AccountServices::new(Arc::new(SqlEmailRegistry::new(bus.store().clone())));
    bus.execute::<Account>(
        &id.to_string(),
        AccountCommand::Register {
            account_id: id,
            email: Email::parse(email).expect("email"),
            name: format!("Name of {email}"),
            password_hash: "hash".into(),
            role,
            at: Utc::now(),
        },
        &services,
        &EventMetadata::system(),
    )
    .await
    .expect("register");
    bus.execute::<Wallet>(
        &id.to_string(),
        WalletCommand::Open {
            account_id: id,
            currency: Currency::EUR,
        },
        &(),
        &EventMetadata::system(),
    )
    .await
    .expect("open wallet");
    id
}

/// Deposits `amount` cents into `account`'s wallet; returns the event's position.
pub async fn deposit(bus: &CommandBus, account: Uuid, amount: i64) -> i64 {
    bus.execute::<Wallet>(
        &account.to_string(),
        WalletCommand::Deposit {
            amount: eur(amount),
        },
        &(),
        &EventMetadata::for_actor(account.to_string()),
    )
    .await
    .expect("deposit")
    .position
    .expect("a position")
}

/// Creates a product with `stock` at 13.90.
pub async fn create_product(bus: &CommandBus, seller: Uuid, stock: u32) -> Uuid {
    let id = Uuid::now_v7();
    bus.execute::<Product>(
        &id.to_string(),
        ProductCommand::Create {
            product_id: id,
            seller,
            name: "Lamp".into(),
            description: "A lamp".into(),
            sku: None,
            price: eur(1390),
            stock,
        },
        &(),
        &EventMetadata::for_actor(seller.to_string()),
    )
    .await
    .expect("create product");
    id
}

async fn product(bus: &CommandBus, id: Uuid, command: ProductCommand) {
    bus.execute::<Product>(&id.to_string(), command, &(), &EventMetadata::system())
        .await
        .expect("product command");
}

async fn order(bus: &CommandBus, id: Uuid, command: OrderCommand, actor: Uuid) {
    bus.execute::<Order>(
        &id.to_string(),
        command,
        &(),
        &EventMetadata::for_actor(actor.to_string()),
    )
    .await
    .expect("order command");
}

async fn grant(bus: &CommandBus, subject: &str, command: PolicySetCommand) {
    bus.execute::<PolicySet>(subject, command, &(), &EventMetadata::system())
        .await
        .expect("policy command");
}

/// Places an order for `quantity` of `product_id` at 15.00 by `customer` (the saga takes it
/// from there); its id.
pub async fn place_order(
    bus: &CommandBus,
    customer: Uuid,
    product_id: Uuid,
    quantity: u32,
) -> Uuid {
    let id = Uuid::now_v7();
    order(
        bus,
        id,
        OrderCommand::Place {
            order_id: id,
            account_id: customer,
            items: vec![OrderLine {
                product_id,
                quantity: qty(quantity),
                unit_price: eur(1500),
            }],
            currency: Currency::EUR,
            placed_at: Utc::now(),
        },
        customer,
    )
    .await;
    id
}

/// Pauses so that the next events get a later `recorded_at` than the previous ones.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(15)).await;
}

/// Places an order for `quantity` of `product` at 15.00 and runs the saga's steps by hand:
/// reserve, await payment, then either charge + approve + commit or cancel + release.
pub async fn order_flow(
    bus: &CommandBus,
    customer: Uuid,
    product_id: Uuid,
    quantity: u32,
    approve: bool,
) -> Uuid {
    let id = Uuid::now_v7();
    let line = OrderLine {
        product_id,
        quantity: qty(quantity),
        unit_price: eur(1500),
    };
    order(
        bus,
        id,
        OrderCommand::Place {
            order_id: id,
            account_id: customer,
            items: vec![line],
            currency: Currency::EUR,
            placed_at: Utc::now(),
        },
        customer,
    )
    .await;
    let total = eur(1500 * i64::from(quantity));
    product(
        bus,
        product_id,
        ProductCommand::Reserve {
            order_id: id,
            quantity: qty(quantity),
        },
    )
    .await;
    order(
        bus,
        id,
        OrderCommand::MarkAwaitingPayment { amount: total },
        customer,
    )
    .await;
    if approve {
        bus.execute::<Wallet>(
            &customer.to_string(),
            WalletCommand::Charge {
                order_id: id,
                amount: total,
            },
            &(),
            &EventMetadata::system(),
        )
        .await
        .expect("charge");
        order(bus, id, OrderCommand::Approve, customer).await;
        product(
            bus,
            product_id,
            ProductCommand::CommitReservation { order_id: id },
        )
        .await;
    } else {
        order(
            bus,
            id,
            OrderCommand::Cancel {
                reason: Some("changed my mind".into()),
            },
            customer,
        )
        .await;
        product(bus, product_id, ProductCommand::Release { order_id: id }).await;
    }
    id
}

/// The scripted sequence: accounts (one deleted, one logging in), a product (created with 10,
/// restocked by 5, repriced to 15.00), an approved order of 2 and a canceled order of 1, a
/// deposit of 100.00, and policies granted and revoked. Pauses between phases so each phase has
/// later timestamps than the one before.
pub async fn run_script(bus: &CommandBus) -> Script {
    let tag = Uuid::new_v4().simple().to_string();
    let customer = register(bus, &format!("customer-{tag}@example.com"), Role::Customer).await;
    let seller = register(bus, &format!("seller-{tag}@example.com"), Role::Seller).await;
    let deleted = register(bus, &format!("gone-{tag}@example.com"), Role::Customer).await;
    deposit(bus, customer, 10_000).await;
    let product_id = create_product(bus, seller, 10).await;
    tick().await;
    product(
        bus,
        product_id,
        ProductCommand::Restock { quantity: qty(5) },
    )
    .await;
    // The restock's time must address the restocked version alone (SQLite records
    // milliseconds, and two commands can land in the same one).
    tick().await;
    product(
        bus,
        product_id,
        ProductCommand::Update {
            name: None,
            description: None,
            price: Some(eur(1500)),
        },
    )
    .await;
    tick().await;
    let approved = order_flow(bus, customer, product_id, 2, true).await;
    let canceled = order_flow(bus, customer, product_id, 1, false).await;
    let policy = format!("{customer}:get:orders:{approved}");
    let subject = customer.to_string();
    grant(
        bus,
        &subject,
        PolicySetCommand::Grant {
            policy: Policy::parse(&policy).unwrap(),
        },
    )
    .await;
    let other = Policy::parse(&format!("{customer}:put:orders:{approved}")).unwrap();
    grant(
        bus,
        &subject,
        PolicySetCommand::Grant {
            policy: other.clone(),
        },
    )
    .await;
    grant(bus, &subject, PolicySetCommand::Revoke { policy: other }).await;
    bus.execute::<Account>(
        &customer.to_string(),
        AccountCommand::RecordLogin { at: Utc::now() },
        &AccountServices::new(Arc::new(SqlEmailRegistry::new(bus.store().clone()))),
        &EventMetadata::for_actor(customer.to_string()),
    )
    .await
    .expect("login");
    bus.execute::<Account>(
        &deleted.to_string(),
        AccountCommand::Delete { at: Utc::now() },
        &AccountServices::new(Arc::new(SqlEmailRegistry::new(bus.store().clone()))),
        &EventMetadata::for_actor(deleted.to_string()),
    )
    .await
    .expect("delete");
    Script {
        customer,
        seller,
        deleted,
        product: product_id,
        approved,
        canceled,
        policy,
    }
}

/// Applies everything to every projection, until each has passed the log's head as it was
/// when called (the commit-safe reader may hold events back for a moment). Panics after 20 s.
pub async fn catch_up_all(store: &Store) {
    let head = store.head_position().await.expect("head");
    let deadline = Instant::now() + Duration::from_secs(20);
    for projection in projectors::read_models::all() {
        loop {
            projectors::catch_up(store, &*projection, 500)
                .await
                .expect("catch up");
            if projectors::runner::has_applied_through(store, projection.name(), head)
                .await
                .expect("checkpoint")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never caught up",
                projection.name()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Waits until every projection has passed the log's head as it is now (a worker does the
/// applying). Panics after `secs` seconds.
pub async fn wait_applied(store: &Store, secs: u64) {
    let head = store.head_position().await.expect("head");
    let deadline = Instant::now() + Duration::from_secs(secs);
    for projection in projectors::read_models::all() {
        while !projectors::runner::has_applied_through(store, projection.name(), head)
            .await
            .expect("checkpoint")
        {
            assert!(
                Instant::now() < deadline,
                "{} did not catch up within {secs} s",
                projection.name()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every read-model table of every projection, dumped in order (name, rows).
pub async fn dump_all(store: &Store) -> Vec<(&'static str, Vec<Vec<Val>>)> {
    let mut out = Vec::new();
    for projection in projectors::read_models::all() {
        for table in projection.tables() {
            let rows = projectors::sql::dump(store, table, "").await.expect("dump");
            out.push((table.name, rows));
        }
    }
    out
}
