//! The GraphQL object types, built from read-model rows or from aggregate states folded from
//! the log.

use async_graphql::{ComplexObject, Context, Enum, Json, SimpleObject, ID};
use chrono::{DateTime, Utc};

use read_models::accounts::AccountRecord;
use read_models::audit::AuditRecord;
use read_models::orders::OrderRecord;
use read_models::policies::PolicyRecord;
use read_models::products::ProductRecord;
use read_models::wallets::{TransactionRecord, WalletRecord};

use crate::db;
use crate::error::{GqlResult, OrInternal};
use crate::loaders::{AccountKey, ProductKey};
use crate::request::RequestData;

/// An amount in minor units (cents) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
pub struct Money {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl Money {
    pub(crate) fn new(amount: i64, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.to_owned(),
        }
    }
}

impl From<domain::Money> for Money {
    fn from(m: domain::Money) -> Self {
        Self {
            amount: m.amount,
            currency: m.currency.code().to_string(),
        }
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "domain::order::OrderStatus")]
pub enum OrderStatus {
    /// Placed; stock is being reserved.
    Pending,
    /// Stock reserved; payment under way.
    AwaitingPayment,
    /// Paid.
    Approved,
    /// Stock could not be reserved.
    Rejected,
    /// Canceled.
    Canceled,
}

/// One line of an order.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct OrderItem {
    /// The product.
    pub product_id: ID,
    /// How many.
    pub quantity: i64,
    /// The price per item when ordered.
    pub unit_price: Money,
    #[graphql(skip)]
    pub(crate) as_of: Option<DateTime<Utc>>,
}

impl OrderItem {
    /// The item of an order's `line` (its product looked up as of `as_of`).
    pub(crate) fn from_line(line: domain::order::OrderLine, as_of: Option<DateTime<Utc>>) -> Self {
        OrderItem {
            product_id: line.product_id.to_string().into(),
            quantity: i64::from(line.quantity.get()),
            unit_price: line.unit_price.into(),
            as_of,
        }
    }
}

#[ComplexObject]
impl OrderItem {
    /// The product (as of the same time as the order, when asked `asOf`).
    async fn product(&self, ctx: &Context<'_>) -> GqlResult<Option<Product>> {
        let data = ctx.data_unchecked::<RequestData>();
        data.products
            .load_one(ProductKey {
                id: self.product_id.to_string(),
                as_of: self.as_of,
            })
            .await
            .map(|found| found.map(Product::from))
            .or_internal()
    }
}

/// An order.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Order {
    /// Order id.
    pub id: ID,
    /// The ordering account.
    pub account_id: ID,
    /// Where it stands.
    pub status: OrderStatus,
    /// The lines.
    pub items: Vec<OrderItem>,
    /// Sum of the lines.
    pub total: Money,
    /// What the wallet is charged, once stock is reserved.
    pub amount_due: Option<Money>,
    /// Why it was rejected or canceled.
    pub reason: Option<String>,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// The order aggregate's version.
    pub version: i64,
}

impl Order {
    /// The order of a read-model record (read as of `as_of`, which its items' products follow).
    pub(crate) fn from_record(r: OrderRecord, as_of: Option<DateTime<Utc>>) -> Self {
        Order {
            id: r.id.into(),
            account_id: r.account_id.into(),
            status: r.status.into(),
            items: r
                .items
                .into_iter()
                .map(|line| OrderItem::from_line(line, as_of))
                .collect(),
            total: Money::new(r.total_amount, &r.currency),
            amount_due: r.amount_due.map(|a| Money::new(a, &r.currency)),
            reason: r.reason,
            placed_at: r.placed_at,
            version: r.version,
        }
    }
}

#[ComplexObject]
impl Order {
    /// The order saga's progress (reservation, payment, approval or compensation): where it
    /// stands now and every step it took. Null until the saga has seen the order.
    async fn saga(&self, ctx: &Context<'_>) -> GqlResult<Option<OrderSaga>> {
        let data = ctx.data_unchecked::<RequestData>();
        let id = self.id.to_string();
        let step = {
            let _slot = crate::budget::admit().await.or_internal()?;
            eventstore_config::saga_tables::current_step(&data.store, &id)
                .await
                .or_internal()?
        };
        let Some(step) = step else {
            return Ok(None);
        };
        let history = {
            let _slot = crate::budget::admit().await.or_internal()?;
            eventstore_config::saga_tables::steps(&data.store, &id)
                .await
                .or_internal()?
        };
        Ok(Some(OrderSaga {
            step,
            history: history
                .into_iter()
                .map(|row| SagaStep {
                    position: row.position,
                    event_type: row.event_type,
                    step: row.step,
                })
                .collect(),
        }))
    }
}

/// An order saga's progress.
#[derive(Debug, Clone, SimpleObject)]
pub struct OrderSaga {
    /// The current step: reserving, reserved, charging, captured, committing, completed,
    /// compensating, rejected or canceled.
    pub step: String,
    /// The steps taken, in log order.
    pub history: Vec<SagaStep>,
}

/// One step of an order saga: the event it reacted to and where that left the saga.
#[derive(Debug, Clone, SimpleObject)]
pub struct SagaStep {
    /// Global position of the event.
    pub position: i64,
    /// Its type.
    pub event_type: String,
    /// The saga's step after it.
    pub step: String,
}

/// A product and its stock.
#[derive(Debug, Clone, SimpleObject)]
pub struct Product {
    /// Product id.
    pub id: ID,
    /// The selling account.
    pub seller_id: ID,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Stock-keeping unit (products created before SKUs existed: `P-` and the id's hex digits).
    pub sku: String,
    /// Price per item.
    pub price: Money,
    /// Items in the warehouse.
    pub stock_on_hand: i64,
    /// Items reserved for orders.
    pub stock_reserved: i64,
    /// On hand minus reserved.
    pub stock_available: i64,
    /// The product aggregate's version.
    pub version: i64,
}

impl From<ProductRecord> for Product {
    fn from(r: ProductRecord) -> Self {
        Product {
            id: r.id.into(),
            seller_id: r.seller.into(),
            name: r.name,
            description: r.description,
            sku: r.sku,
            price: Money::new(r.price_amount, &r.price_currency),
            stock_on_hand: r.stock_on_hand,
            stock_reserved: r.stock_reserved,
            stock_available: r.stock_available,
            version: r.version,
        }
    }
}

/// An account.
#[derive(Debug, Clone, SimpleObject)]
pub struct Account {
    /// Account id.
    pub id: ID,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `customer`, `seller` or `admin`.
    pub role: String,
    /// True once deleted.
    pub deleted: bool,
    /// When it registered.
    pub registered_at: DateTime<Utc>,
    /// The account aggregate's version.
    pub version: i64,
}

impl From<AccountRecord> for Account {
    fn from(r: AccountRecord) -> Self {
        Account {
            id: r.id.into(),
            email: r.email,
            name: r.name,
            role: r.role,
            deleted: r.deleted,
            registered_at: r.registered_at,
            version: r.version,
        }
    }
}

/// A money movement of a wallet.
#[derive(Debug, Clone, SimpleObject)]
pub struct WalletTransaction {
    /// Global position of the event.
    pub position: i64,
    /// `deposit`, `capture`, `decline` or `refund`.
    pub kind: String,
    /// The order paid, declined or refunded.
    pub order_id: Option<ID>,
    /// The amount.
    pub amount: Money,
    /// Why a payment was declined.
    pub reason: Option<String>,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

impl From<TransactionRecord> for WalletTransaction {
    fn from(r: TransactionRecord) -> Self {
        WalletTransaction {
            position: r.global_position,
            kind: r.kind,
            order_id: r.order_id.map(Into::into),
            amount: Money::new(r.amount, &r.currency),
            reason: r.reason,
            recorded_at: r.recorded_at,
        }
    }
}

/// Transactions per page when `first` is not given.
pub const DEFAULT_TRANSACTIONS_PAGE: i32 = 100;
/// The largest page of transactions.
pub const MAX_TRANSACTIONS_PAGE: i32 = 1000;

/// A wallet (one per account).
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Wallet {
    /// The owner (the wallet's id).
    pub account_id: ID,
    /// The balance.
    pub balance: Money,
    /// The wallet aggregate's version.
    pub version: i64,
    /// Global position of the last event folded into this version.
    #[graphql(skip)]
    pub(crate) position: i64,
    #[graphql(skip)]
    pub(crate) as_of: Option<DateTime<Utc>>,
}

impl Wallet {
    /// The wallet of a read-model record (read as of `as_of`, which its account follows).
    pub(crate) fn from_record(r: WalletRecord, as_of: Option<DateTime<Utc>>) -> Self {
        Wallet {
            account_id: r.account_id.into(),
            balance: Money::new(r.balance, &r.currency),
            version: r.version,
            position: r.last_position,
            as_of,
        }
    }
}

#[ComplexObject]
impl Wallet {
    /// The owning account.
    async fn account(&self, ctx: &Context<'_>) -> GqlResult<Option<Account>> {
        let data = ctx.data_unchecked::<RequestData>();
        data.accounts
            .load_one(AccountKey {
                id: self.account_id.to_string(),
                as_of: self.as_of,
            })
            .await
            .map(|found| found.map(Account::from))
            .or_internal()
    }

    /// Money movements up to this version, oldest first: up to `first` (default 100, at most
    /// 1000) after global position `afterPosition` (pass the last `position` seen for the
    /// next page).
    #[graphql(
        complexity = "first.unwrap_or(DEFAULT_TRANSACTIONS_PAGE).clamp(1, MAX_TRANSACTIONS_PAGE) as usize * child_complexity + 1"
    )]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after_position: Option<i64>,
    ) -> GqlResult<Vec<WalletTransaction>> {
        let limit = match first.unwrap_or(DEFAULT_TRANSACTIONS_PAGE) {
            n if (1..=MAX_TRANSACTIONS_PAGE).contains(&n) => i64::from(n),
            n => {
                return Err(crate::error::bad_input(format!(
                    "first must be between 1 and {MAX_TRANSACTIONS_PAGE}, got {n}"
                )))
            }
        };
        let data = ctx.data_unchecked::<RequestData>();
        let page = read_models::wallets::transactions(
            &self.account_id,
            after_position.unwrap_or(0),
            self.position,
            limit,
        );
        let rows = db::fetch_all(&data.store, &page).await.or_internal()?;
        Ok(rows.into_iter().map(WalletTransaction::from).collect())
    }
}

/// The policies one subject holds.
#[derive(Debug, Clone, SimpleObject)]
pub struct PolicySet {
    /// The subject (account id or `*`).
    pub subject: String,
    /// `sub:action:resource_type:resource_id` strings, sorted (costs 20 in the complexity
    /// limit: a set grows with the subject's orders).
    #[graphql(complexity = 20)]
    pub policies: Vec<String>,
    /// The policy set aggregate's version (0: none granted yet).
    pub version: i64,
}

impl From<PolicyRecord> for PolicySet {
    fn from(r: PolicyRecord) -> Self {
        PolicySet {
            subject: r.subject,
            policies: r.policies,
            version: r.version,
        }
    }
}

/// One event of an aggregate's history.
#[derive(Debug, Clone, SimpleObject)]
pub struct EventRecord {
    /// Global position.
    pub position: i64,
    /// `account`, `wallet`, `product`, `order` or `policy_set`.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: ID,
    /// The aggregate's version after this event.
    pub version: i64,
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it (account id or `system`).
    pub actor: Option<String>,
    /// Correlation id of the request or process.
    pub correlation_id: Option<String>,
    /// The event in its public view (`{"type", "data"}` as stored, without secrets such
    /// as password hashes and refresh-token ids).
    pub payload: Json<serde_json::Value>,
}

/// One audit entry: who did what when.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject, serde::Serialize)]
pub struct AuditEntry {
    /// Global position (the cursor).
    pub position: i64,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Who (account id or `system`).
    pub actor: Option<String>,
    /// The event type.
    pub event_type: String,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after the event.
    pub version: i64,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Causation id.
    pub causation_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            position: r.global_position,
            recorded_at: r.recorded_at,
            actor: r.actor,
            event_type: r.event_type,
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            version: r.version,
            correlation_id: r.correlation_id,
            causation_id: r.causation_id,
            request_id: r.request_id,
        }
    }
}

/// A projection's progress (admins only).
#[derive(Debug, Clone, SimpleObject)]
pub struct ProjectionInfo {
    /// Stable name.
    pub name: String,
    /// Global position of the last applied event.
    pub position: i64,
    /// Events in the log after the checkpoint.
    pub lag: i64,
    /// `idle`, `running`, `stuck`, `rebuilding`, … as the projectors report it.
    pub state: String,
}
