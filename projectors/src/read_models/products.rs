//! `rm_products`: one row version per product event (stock on hand / reserved / available).

use domain::product::ProductEvent;
use eventstore_config::StoredEvent;

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};

/// The products read model.
pub struct Products;

/// A product row.
#[derive(Debug, Clone)]
pub struct ProductRow {
    id: String,
    seller: String,
    name: String,
    description: String,
    price_amount: i64,
    price_currency: String,
    on_hand: i64,
    reserved: i64,
}

static TABLE: TableDef = TableDef {
    name: "rm_products",
    columns: &[
        col("id", Kind::Text),
        col("seller", Kind::Text),
        col("name", Kind::Text),
        col("description", Kind::Text),
        col("price_amount", Kind::Int),
        col("price_currency", Kind::Text),
        col("stock_on_hand", Kind::Int),
        col("stock_reserved", Kind::Int),
        col("stock_available", Kind::Int),
    ],
    history: true,
};

impl Model for Products {
    type State = ProductRow;
    const NAME: &'static str = "products";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = Some(&TABLE);
    const APPENDS: &'static [&'static TableDef] = &[];

    fn key(event: &StoredEvent) -> Option<String> {
        (event.aggregate_type == "product").then(|| event.aggregate_id.clone())
    }

    fn apply(
        state: Option<&ProductRow>,
        event: &StoredEvent,
        _: &mut Appends,
    ) -> Result<Option<ProductRow>, ApplyError> {
        let decoded: ProductEvent = model::decode(event)?;
        if let ProductEvent::ProductCreated {
            product_id,
            seller,
            name,
            description,
            price,
            stock,
        } = decoded
        {
            return Ok(Some(ProductRow {
                id: product_id.to_string(),
                seller: seller.to_string(),
                name,
                description,
                price_amount: price.amount,
                price_currency: price.currency.code().to_string(),
                on_hand: i64::from(stock),
                reserved: 0,
            }));
        }
        let mut row = state
            .cloned()
            .ok_or_else(|| ApplyError(format!("{} before ProductCreated", event.event_type)))?;
        match decoded {
            ProductEvent::ProductCreated { .. } => {}
            ProductEvent::ProductUpdated {
                name,
                description,
                price,
            } => {
                if let Some(name) = name {
                    row.name = name;
                }
                if let Some(description) = description {
                    row.description = description;
                }
                if let Some(price) = price {
                    row.price_amount = price.amount;
                    row.price_currency = price.currency.code().to_string();
                }
            }
            ProductEvent::StockAdded { quantity } => row.on_hand += i64::from(quantity.get()),
            ProductEvent::StockReserved { quantity, .. } => {
                row.reserved += i64::from(quantity.get())
            }
            ProductEvent::StockReservationRejected { .. } => {}
            ProductEvent::ReservationReleased { quantity, .. } => {
                row.reserved -= i64::from(quantity.get())
            }
            ProductEvent::ReservationCommitted { quantity, .. } => {
                row.reserved -= i64::from(quantity.get());
                row.on_hand -= i64::from(quantity.get());
            }
        }
        Ok(Some(row))
    }

    fn to_vals(s: &ProductRow) -> Vec<Val> {
        vec![
            Val::Text(s.id.clone()),
            Val::Text(s.seller.clone()),
            Val::Text(s.name.clone()),
            Val::Text(s.description.clone()),
            Val::Int(s.price_amount),
            Val::Text(s.price_currency.clone()),
            Val::Int(s.on_hand),
            Val::Int(s.reserved),
            Val::Int(s.on_hand - s.reserved),
        ]
    }

    fn from_vals(v: &[Val]) -> Result<ProductRow, ApplyError> {
        Ok(ProductRow {
            id: model::text(v, 0)?,
            seller: model::text(v, 1)?,
            name: model::text(v, 2)?,
            description: model::text(v, 3)?,
            price_amount: model::int(v, 4)?,
            price_currency: model::text(v, 5)?,
            on_hand: model::int(v, 6)?,
            reserved: model::int(v, 7)?,
        })
    }
}
