//! The read-model queries: current rows (`valid_to_position IS NULL`) or the row versions
//! valid at a time (`valid_from <= T < valid_to`), both served by indexes — never a replay.

use chrono::{DateTime, Utc};
use eventstore_config::Store;

use crate::db::{Reader, Sql};
use crate::types::{
    Account, AuditEntry, Money, Order, OrderItem, OrderStatus, PolicySet, Product, ProjectionInfo,
    Wallet, WalletTransaction,
};

/// A read failure: the database, or a row that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("reading the read models failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode.
    #[error("read-model row {0} does not decode: {1}")]
    Corrupt(String, String),
}

type Result<T> = std::result::Result<T, ReadError>;

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    account_id: String,
    status: String,
    currency: String,
    items: String,
    total_amount: i64,
    amount_due: Option<i64>,
    reason: Option<String>,
    placed_at: DateTime<Utc>,
    version: i64,
}

const ORDER_COLUMNS: &str = "SELECT id, account_id, status, currency, items, total_amount, \
     amount_due, reason, placed_at, version FROM rm_orders WHERE 1 = 1";

impl OrderRow {
    fn into_order(self, as_of: Option<DateTime<Utc>>) -> Result<Order> {
        let corrupt = |why: String| ReadError::Corrupt(format!("rm_orders/{}", self.id), why);
        let lines: Vec<domain::order::OrderLine> =
            serde_json::from_str(&self.items).map_err(|e| corrupt(e.to_string()))?;
        let status = OrderStatus::parse(&self.status)
            .ok_or_else(|| corrupt(format!("unknown status {}", self.status)))?;
        Ok(Order {
            id: self.id.clone().into(),
            account_id: self.account_id.into(),
            status,
            items: lines.into_iter().map(|line| item(line, as_of)).collect(),
            total: Money::new(self.total_amount, &self.currency),
            amount_due: self.amount_due.map(|a| Money::new(a, &self.currency)),
            reason: self.reason,
            placed_at: self.placed_at,
            version: self.version,
        })
    }
}

pub(crate) fn item(line: domain::order::OrderLine, as_of: Option<DateTime<Utc>>) -> OrderItem {
    OrderItem {
        product_id: line.product_id.to_string().into(),
        quantity: i64::from(line.quantity.get()),
        unit_price: line.unit_price.into(),
        as_of,
    }
}

/// One order, current or as of a time.
pub(crate) async fn order(
    reader: &Reader<'_>,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Order>> {
    let mut sql = Sql::new(ORDER_COLUMNS);
    sql.push(" AND id = ")
        .bind(id)
        .valid_at(as_of)
        .push(" LIMIT 1");
    reader
        .fetch_optional::<OrderRow>(&sql)
        .await?
        .map(|r| r.into_order(as_of))
        .transpose()
}

/// What an order list is restricted to.
#[derive(Debug, Default, Clone)]
pub(crate) struct OrderFilter {
    pub account_id: Option<String>,
    pub status: Option<OrderStatus>,
    /// `None`: every order; otherwise only these ids (the caller's policies).
    pub ids: Option<Vec<String>>,
}

/// Up to `limit` orders after the cursor id, in id order.
pub(crate) async fn orders(
    store: &Store,
    filter: &OrderFilter,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Order>> {
    let mut sql = Sql::new(ORDER_COLUMNS);
    if let Some(account) = &filter.account_id {
        sql.push(" AND account_id = ").bind(account.clone());
    }
    if let Some(status) = filter.status {
        sql.push(" AND status = ").bind(status.as_str());
    }
    if let Some(ids) = &filter.ids {
        sql.in_list("id", ids);
    }
    if let Some(after) = after {
        sql.push(" AND id > ").bind(after);
    }
    sql.valid_at(as_of).push(" ORDER BY id LIMIT ").bind(limit);
    sql.fetch_all::<OrderRow>(store)
        .await?
        .into_iter()
        .map(|r| r.into_order(as_of))
        .collect()
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: String,
    seller: String,
    name: String,
    description: String,
    price_amount: i64,
    price_currency: String,
    stock_on_hand: i64,
    stock_reserved: i64,
    stock_available: i64,
    version: i64,
}

const PRODUCT_COLUMNS: &str = "SELECT id, seller, name, description, price_amount, \
     price_currency, stock_on_hand, stock_reserved, stock_available, version \
     FROM rm_products WHERE 1 = 1";

impl From<ProductRow> for Product {
    fn from(r: ProductRow) -> Self {
        Product {
            id: r.id.into(),
            seller_id: r.seller.into(),
            name: r.name,
            description: r.description,
            price: Money::new(r.price_amount, &r.price_currency),
            stock_on_hand: r.stock_on_hand,
            stock_reserved: r.stock_reserved,
            stock_available: r.stock_available,
            version: r.version,
        }
    }
}

/// A product list's filter.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProductQuery {
    pub name_contains: Option<String>,
    pub seller_id: Option<String>,
    pub in_stock: Option<bool>,
}

/// Products with these ids (current or as of a time).
pub(crate) async fn products_by_id(
    store: &Store,
    ids: &[String],
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Product>> {
    let mut sql = Sql::new(PRODUCT_COLUMNS);
    sql.in_list("id", ids).valid_at(as_of);
    Ok(sql
        .fetch_all::<ProductRow>(store)
        .await?
        .into_iter()
        .map(Product::from)
        .collect())
}

/// Up to `limit` products after the cursor id, in id order.
pub(crate) async fn products(
    store: &Store,
    filter: &ProductQuery,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Product>> {
    let mut sql = Sql::new(PRODUCT_COLUMNS);
    if let Some(text) = &filter.name_contains {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push(" AND LOWER(name) LIKE ")
            .bind(format!("%{escaped}%"))
            .push(" ESCAPE '\\'");
    }
    if let Some(seller) = &filter.seller_id {
        sql.push(" AND seller = ").bind(seller.clone());
    }
    match filter.in_stock {
        Some(true) => {
            sql.push(" AND stock_available > 0");
        }
        Some(false) => {
            sql.push(" AND stock_available = 0");
        }
        None => {}
    }
    if let Some(after) = after {
        sql.push(" AND id > ").bind(after);
    }
    sql.valid_at(as_of).push(" ORDER BY id LIMIT ").bind(limit);
    Ok(sql
        .fetch_all::<ProductRow>(store)
        .await?
        .into_iter()
        .map(Product::from)
        .collect())
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    email: String,
    name: String,
    role: String,
    deleted: bool,
    registered_at: DateTime<Utc>,
    version: i64,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
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

const ACCOUNT_COLUMNS: &str = "SELECT id, email, name, role, deleted, registered_at, version \
     FROM rm_accounts WHERE 1 = 1";

/// One account, current or as of a time.
pub(crate) async fn account(
    reader: &Reader<'_>,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Account>> {
    let mut sql = Sql::new(ACCOUNT_COLUMNS);
    sql.push(" AND id = ")
        .bind(id)
        .valid_at(as_of)
        .push(" LIMIT 1");
    Ok(reader
        .fetch_optional::<AccountRow>(&sql)
        .await?
        .map(Account::from))
}

/// Accounts with these ids (current or as of a time).
pub(crate) async fn accounts_by_id(
    store: &Store,
    ids: &[String],
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Account>> {
    let mut sql = Sql::new(ACCOUNT_COLUMNS);
    sql.in_list("id", ids).valid_at(as_of);
    Ok(sql
        .fetch_all::<AccountRow>(store)
        .await?
        .into_iter()
        .map(Account::from)
        .collect())
}

#[derive(sqlx::FromRow)]
struct WalletRow {
    account_id: String,
    currency: String,
    balance: i64,
    version: i64,
    last_position: i64,
}

/// One wallet, current or as of a time.
pub(crate) async fn wallet(
    reader: &Reader<'_>,
    account_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Wallet>> {
    let mut sql = Sql::new(
        "SELECT account_id, currency, balance, version, last_position FROM rm_wallets \
         WHERE account_id = ",
    );
    sql.bind(account_id).valid_at(as_of).push(" LIMIT 1");
    Ok(reader
        .fetch_optional::<WalletRow>(&sql)
        .await?
        .map(|r| Wallet {
            account_id: r.account_id.into(),
            balance: Money::new(r.balance, &r.currency),
            version: r.version,
            position: r.last_position,
            as_of,
        }))
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    global_position: i64,
    kind: String,
    order_id: Option<String>,
    amount: i64,
    currency: String,
    reason: Option<String>,
    recorded_at: DateTime<Utc>,
}

/// Up to `limit` of a wallet's money movements after position `after` up to `through` (global
/// positions), oldest first.
pub(crate) async fn wallet_transactions(
    store: &Store,
    account_id: &str,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<WalletTransaction>> {
    let mut sql = Sql::new(
        "SELECT global_position, kind, order_id, amount, currency, reason, recorded_at \
         FROM rm_wallet_transactions WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND global_position > ")
        .bind(after)
        .push(" AND global_position <= ")
        .bind(through)
        .push(" ORDER BY global_position LIMIT ")
        .bind(limit);
    Ok(sql
        .fetch_all::<TransactionRow>(store)
        .await?
        .into_iter()
        .map(|r| WalletTransaction {
            position: r.global_position,
            kind: r.kind,
            order_id: r.order_id.map(Into::into),
            amount: Money::new(r.amount, &r.currency),
            reason: r.reason,
            recorded_at: r.recorded_at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    subject: String,
    policies: String,
    version: i64,
}

/// One subject's policies, current or as of a time.
pub(crate) async fn policies(
    store: &Store,
    subject: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<PolicySet>> {
    let mut sql = Sql::new("SELECT subject, policies, version FROM rm_policies WHERE subject = ");
    sql.bind(subject).valid_at(as_of).push(" LIMIT 1");
    sql.fetch_optional::<PolicyRow>(store)
        .await?
        .map(|r| {
            let policies: Vec<String> = serde_json::from_str(&r.policies).map_err(|e| {
                ReadError::Corrupt(format!("rm_policies/{}", r.subject), e.to_string())
            })?;
            Ok(PolicySet {
                subject: r.subject,
                policies,
                version: r.version,
            })
        })
        .transpose()
}

/// What an audit query asks for. `resource_type` is an aggregate type (`order`, …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who (account id or `system`).
    pub actor: Option<String>,
    /// Aggregate type.
    pub resource_type: Option<String>,
    /// Aggregate id.
    pub resource_id: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded at or before.
    pub to: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    global_position: i64,
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    version: i64,
    actor: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    request_id: Option<String>,
    recorded_at: DateTime<Utc>,
}

/// Up to `limit` audit entries after position `after`, in log order: who did what when.
pub async fn audit(
    store: &Store,
    filter: &AuditFilter,
    after: i64,
    limit: i64,
) -> std::result::Result<Vec<AuditEntry>, ReadError> {
    let mut sql = Sql::new(
        "SELECT global_position, event_type, aggregate_type, aggregate_id, version, actor, \
         correlation_id, causation_id, request_id, recorded_at FROM rm_audit \
         WHERE global_position > ",
    );
    sql.bind(after);
    if let Some(actor) = &filter.actor {
        sql.push(" AND actor = ").bind(actor.clone());
    }
    if let Some(t) = &filter.resource_type {
        sql.push(" AND aggregate_type = ").bind(t.clone());
    }
    if let Some(id) = &filter.resource_id {
        sql.push(" AND aggregate_id = ").bind(id.clone());
    }
    if let Some(from) = filter.from {
        sql.push(" AND recorded_at >= ").bind(from);
    }
    if let Some(to) = filter.to {
        sql.push(" AND recorded_at <= ").bind(to);
    }
    sql.push(" ORDER BY global_position LIMIT ").bind(limit);
    Ok(sql
        .fetch_all::<AuditRow>(store)
        .await?
        .into_iter()
        .map(|r| AuditEntry {
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
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ProjectionRow {
    name: String,
    global_position: i64,
    state: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

/// Every projection with a checkpoint (rebuild checkpoints excluded), with its lag.
pub(crate) async fn projections(store: &Store) -> Result<Vec<ProjectionInfo>> {
    let rows = Sql::new(
        "SELECT c.name AS name, c.global_position AS global_position, s.state AS state \
         FROM projection_checkpoints c LEFT JOIN projection_status s ON s.name = c.name \
         WHERE c.name NOT LIKE '%\\_\\_rebuild' ESCAPE '\\' ORDER BY c.name",
    )
    .fetch_all::<ProjectionRow>(store)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM events WHERE global_position > ");
        sql.bind(row.global_position);
        let lag = sql.fetch_optional::<Count>(store).await?.map_or(0, |c| c.n);
        out.push(ProjectionInfo {
            name: row.name,
            position: row.global_position,
            lag,
            state: row.state.unwrap_or_else(|| "idle".to_owned()),
        });
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct Position {
    global_position: i64,
}

/// The global position of an aggregate's event at `version`.
pub(crate) async fn position_of(
    store: &Store,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
) -> Result<Option<i64>> {
    let mut sql = Sql::new("SELECT global_position FROM events WHERE aggregate_type = ");
    sql.bind(aggregate_type)
        .push(" AND aggregate_id = ")
        .bind(aggregate_id)
        .push(" AND sequence = ")
        .bind(version);
    Ok(sql
        .fetch_optional::<Position>(store)
        .await?
        .map(|p| p.global_position))
}
