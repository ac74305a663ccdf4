//! `rm_orders`: one row version per order event; `items` is the JSON array of the order's lines
//! (`[{"product_id", "quantity", "unit_price": {"amount", "currency"}}]`, as in `OrderPlaced`).

use chrono::{DateTime, Utc};
use domain::order::{OrderEvent, OrderStatus};
use eventstore_config::StoredEvent;

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};

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
