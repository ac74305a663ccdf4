//! Orders: placement (priced here from the products' current prices; the order and its owner's
//! two grants in one unit of work) and cancellation. Reserving stock and taking payment are the
//! saga's work, after `OrderPlaced`.

use chrono::Utc;
use domain::order::{Order, OrderCommand, OrderError, OrderLine, MAX_ITEMS};
use domain::product::Product;
use domain::{Currency, Quantity};
use eventstore_config::EventMetadata;
use uuid::Uuid;

use crate::error::domain_error;
use crate::policies::decide_grant;
use crate::unit::{cache_policies, commit, run};
use crate::{App, AppError, Done, Kind, Record};

/// Longest cancel reason accepted, in characters.
pub const MAX_REASON_LEN: usize = 500;

/// One requested line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The product.
    pub product_id: Uuid,
    /// How many.
    pub quantity: Quantity,
}

/// A placed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The new order's id.
    pub order_id: Uuid,
    /// Its version and position.
    pub done: Done,
}

/// Prices `items` at their products' current prices, in `currency`. The line count is checked
/// first, before any product is loaded.
pub async fn price_lines(
    app: &App,
    items: &[Item],
    currency: Currency,
) -> Result<Vec<OrderLine>, AppError> {
    if items.len() > MAX_ITEMS {
        return Err(domain_error(OrderError::TooManyItems {
            max: MAX_ITEMS,
            actual: items.len(),
        }));
    }
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let product = app
            .store()
            .load_current::<Product>(&item.product_id.to_string())
            .await?
            .state;
        let Some(unit_price) = product.price() else {
            return Err(AppError::rejected(
                Kind::NotFound,
                format!("product {} not found", item.product_id),
                Some(&format!("items[{i}].product_id")),
            ));
        };
        if unit_price.currency != currency {
            return Err(AppError::rejected(
                Kind::Unprocessable,
                format!(
                    "product {} is priced in {}, the order is in {}",
                    item.product_id, unit_price.currency, currency
                ),
                Some("currency"),
            ));
        }
        lines.push(OrderLine {
            product_id: item.product_id,
            quantity: item.quantity,
            unit_price,
        });
    }
    Ok(lines)
}

/// Places an order for `account_id` at the products' current prices; its owner may then read
/// and cancel it (the grants commit with the order).
#[tracing::instrument(skip_all, fields(account = %account_id))]
pub async fn place_order(
    app: &App,
    metadata: &EventMetadata,
    account_id: Uuid,
    items: &[Item],
    currency: Currency,
    record: Record<'_, Placed>,
) -> Result<Placed, AppError> {
    let lines = price_lines(app, items, currency).await?;
    let order_id = Uuid::now_v7();
    let id = order_id.to_string();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Order>(
                &id,
                OrderCommand::Place {
                    order_id,
                    account_id,
                    items: lines.clone(),
                    currency,
                    placed_at: Utc::now(),
                },
                &(),
                None,
            )
            .await?;
        let grants = [
            decide_grant(&mut unit, &format!("{account_id}:get:orders:{id}")).await?,
            decide_grant(&mut unit, &format!("{account_id}:put:orders:{id}")).await?,
        ];
        let (commit, placed) = commit(unit, record, |c| Placed {
            order_id,
            done: Done {
                version: decided.version,
                position: c.last_position(),
            },
        })
        .await?;
        cache_policies(app, &commit, &grants);
        Ok(placed)
    })
    .await
}

/// Cancels an order that is pending or awaiting payment.
pub async fn cancel_order(
    app: &App,
    metadata: &EventMetadata,
    order_id: Uuid,
    reason: Option<String>,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    if let Some(reason) = &reason {
        if reason.chars().count() > MAX_REASON_LEN {
            return Err(AppError::rejected(
                Kind::Unprocessable,
                format!("reason is longer than {MAX_REASON_LEN} characters"),
                Some("reason"),
            ));
        }
    }
    let id = order_id.to_string();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Order>(
                &id,
                OrderCommand::Cancel {
                    reason: reason.clone(),
                },
                &(),
                expected,
            )
            .await?;
        let (_, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<Order>(&id),
        })
        .await?;
        Ok(done)
    })
    .await
}
