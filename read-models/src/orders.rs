//! `rm_orders`: one row version per order event; `items` is the JSON array of the order's lines
//! (`[{"product_id", "quantity", "unit_price": {"amount", "currency"}}]`, as in `OrderPlaced`).

use chrono::{DateTime, Utc};
use domain::order::{OrderEvent, OrderLine, OrderStatus};
use eventstore_config::{Sql, StoredEvent};

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};
use crate::select::{valid_at, ReadModelError, Record, Select};

/// The orders read model.
pub struct Orders;

/// An order row.
#[derive(Debug, Clone)]
pub struct OrderRow {
    id: String,
    account_id: String,
    status: String,
    currency: String,
    items: String,
    total: i64,
    amount_due: Option<i64>,
    reason: Option<String>,
    placed_at: DateTime<Utc>,
}

static TABLE: TableDef = TableDef {
    name: "rm_orders",
    columns: &[
        col("id", Kind::Text),
        col("account_id", Kind::Text),
        col("status", Kind::Text),
        col("currency", Kind::Text),
        col("items", Kind::Text),
        col("total_amount", Kind::Int),
        col("amount_due", Kind::OptInt),
        col("reason", Kind::OptText),
        col("placed_at", Kind::Time),
    ],
    history: true,
};

impl Model for Orders {
    type State = OrderRow;
    const NAME: &'static str = "orders";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = Some(&TABLE);
    const APPENDS: &'static [&'static TableDef] = &[];

    fn key(event: &StoredEvent) -> Option<String> {
        (event.aggregate_type == "order").then(|| event.aggregate_id.clone())
    }

    fn apply(
        state: Option<&OrderRow>,
        event: &StoredEvent,
        _: &mut Appends,
    ) -> Result<Option<OrderRow>, ApplyError> {
        let decoded: OrderEvent = model::decode(event)?;
        if let OrderEvent::OrderPlaced {
            order_id,
            account_id,
            items,
            currency,
            total,
            placed_at,
        } = decoded
        {
            let items = serde_json::to_string(&items).map_err(|e| ApplyError(e.to_string()))?;
            return Ok(Some(OrderRow {
                id: order_id.to_string(),
                account_id: account_id.to_string(),
                status: OrderStatus::Pending.as_str().to_string(),
                currency: currency.code().to_string(),
                items,
                total: total.amount,
                amount_due: None,
                reason: None,
                placed_at,
            }));
        }
        let mut row = state
            .cloned()
            .ok_or_else(|| ApplyError(format!("{} before OrderPlaced", event.event_type)))?;
        let status = match decoded {
            OrderEvent::OrderPlaced { .. } => OrderStatus::Pending,
            OrderEvent::OrderAwaitingPayment { amount } => {
                row.amount_due = Some(amount.amount);
                OrderStatus::AwaitingPayment
            }
            OrderEvent::OrderApproved => OrderStatus::Approved,
            OrderEvent::OrderRejected { reason } => {
                row.reason = Some(reason);
                OrderStatus::Rejected
            }
            OrderEvent::OrderCanceled { reason, .. } => {
                row.reason = reason;
                OrderStatus::Canceled
            }
        };
        row.status = status.as_str().to_string();
        Ok(Some(row))
    }

    fn to_vals(s: &OrderRow) -> Vec<Val> {
        vec![
            Val::Text(s.id.clone()),
            Val::Text(s.account_id.clone()),
            Val::Text(s.status.clone()),
            Val::Text(s.currency.clone()),
            Val::Text(s.items.clone()),
            Val::Int(s.total),
            Val::OptInt(s.amount_due),
            Val::OptText(s.reason.clone()),
            Val::Time(s.placed_at),
        ]
    }

    fn from_vals(v: &[Val]) -> Result<OrderRow, ApplyError> {
        Ok(OrderRow {
            id: model::text(v, 0)?,
            account_id: model::text(v, 1)?,
            status: model::text(v, 2)?,
            currency: model::text(v, 3)?,
            items: model::text(v, 4)?,
            total: model::int(v, 5)?,
            amount_due: model::opt_int(v, 6),
            reason: model::opt_text(v, 7),
            placed_at: model::time(v, 8)?,
        })
    }
}

/// An order as read: the current row version, or the one valid at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Order id.
    pub id: String,
    /// The ordering account.
    pub account_id: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// The ISO 4217 code of every amount.
    pub currency: String,
    /// The lines, as placed.
    pub items: Vec<OrderLine>,
    /// Sum of the lines, minor units.
    pub total_amount: i64,
    /// What the wallet is charged, once stock is reserved.
    pub amount_due: Option<i64>,
    /// Why it was rejected or canceled.
    pub reason: Option<String>,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// The order aggregate's version.
    pub version: i64,
}

/// An `rm_orders` row as stored (`items` JSON, `status` text).
#[derive(sqlx::FromRow)]
pub struct StoredOrder {
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

impl Record for OrderRecord {
    type Raw = StoredOrder;

    fn decode(r: StoredOrder) -> Result<Self, ReadModelError> {
        let corrupt = |why: String| ReadModelError::Corrupt(format!("rm_orders/{}", r.id), why);
        let items = serde_json::from_str(&r.items).map_err(|e| corrupt(e.to_string()))?;
        let status = parse_status(&r.status)
            .ok_or_else(|| corrupt(format!("unknown status {}", r.status)))?;
        Ok(OrderRecord {
            id: r.id,
            account_id: r.account_id,
            status,
            currency: r.currency,
            items,
            total_amount: r.total_amount,
            amount_due: r.amount_due,
            reason: r.reason,
            placed_at: r.placed_at,
            version: r.version,
        })
    }
}

/// The status stored as `s` (its [`OrderStatus::as_str`]).
fn parse_status(s: &str) -> Option<OrderStatus> {
    [
        OrderStatus::Pending,
        OrderStatus::AwaitingPayment,
        OrderStatus::Approved,
        OrderStatus::Rejected,
        OrderStatus::Canceled,
    ]
    .into_iter()
    .find(|v| v.as_str() == s)
}

const SELECT: &str = "SELECT id, account_id, status, currency, items, total_amount, \
     amount_due, reason, placed_at, version FROM rm_orders WHERE 1 = 1";

/// The order `id`, current or as of a time.
pub fn by_id(id: &str, as_of: Option<DateTime<Utc>>) -> Select<OrderRecord> {
    let mut sql = Sql::new(SELECT);
    sql.push(" AND id = ").bind(id);
    valid_at(&mut sql, as_of).push(" LIMIT 1");
    Select::new(sql)
}

/// What an order list is restricted to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this account's orders.
    pub account_id: Option<String>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// `None`: every order; otherwise only these ids (the caller's policies).
    pub ids: Option<Vec<String>>,
}

/// Up to `limit` orders matching `filter` after the cursor id, in id order.
pub fn page(
    filter: &OrderFilter,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Select<OrderRecord> {
    let mut sql = Sql::new(SELECT);
    if let Some(account) = &filter.account_id {
        sql.push(" AND account_id = ").bind(account);
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
    valid_at(&mut sql, as_of)
        .push(" ORDER BY id LIMIT ")
        .bind(limit);
    Select::new(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_it_was_stored() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::AwaitingPayment,
            OrderStatus::Approved,
            OrderStatus::Rejected,
            OrderStatus::Canceled,
        ] {
            assert_eq!(parse_status(status.as_str()), Some(status));
        }
        assert_eq!(parse_status("SHIPPED"), None);
    }
}
