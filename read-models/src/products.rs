//! `rm_products`: one row version per product event (stock on hand / reserved / available).

use chrono::{DateTime, Utc};
use domain::product::ProductEvent;
use eventstore_config::{Sql, StoredEvent};

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};
use crate::select::{valid_at, Select};

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
    sku: String,
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
        col("sku", Kind::Text),
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
            sku,
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
                sku,
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
            Val::Text(s.sku.clone()),
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
            sku: model::text(v, 9)?,
        })
    }
}

/// A product as read: the current row version, or the one valid at a time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProductRecord {
    /// Product id.
    pub id: String,
    /// The selling account.
    pub seller: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price per item, minor units.
    pub price_amount: i64,
    /// The price's ISO 4217 code.
    pub price_currency: String,
    /// Items in the warehouse.
    pub stock_on_hand: i64,
    /// Items reserved for orders.
    pub stock_reserved: i64,
    /// On hand minus reserved.
    pub stock_available: i64,
    /// Stock-keeping unit.
    pub sku: String,
    /// The product aggregate's version.
    pub version: i64,
}

crate::select::plain_record!(ProductRecord);

const SELECT: &str = "SELECT id, seller, name, description, price_amount, price_currency, \
     stock_on_hand, stock_reserved, stock_available, sku, version FROM rm_products WHERE 1 = 1";

/// A product list's filter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProductFilter {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only this seller's products.
    pub seller_id: Option<String>,
    /// Only products with available stock (true) or without (false).
    pub in_stock: Option<bool>,
}

/// The products with these ids, current or as of a time.
pub fn by_ids(ids: &[String], as_of: Option<DateTime<Utc>>) -> Select<ProductRecord> {
    let mut sql = Sql::new(SELECT);
    sql.in_list("id", ids);
    valid_at(&mut sql, as_of);
    Select::new(sql)
}

/// Up to `limit` products matching `filter` after the cursor id, in id order.
pub fn page(
    filter: &ProductFilter,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Select<ProductRecord> {
    let mut sql = Sql::new(SELECT);
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
        sql.push(" AND seller = ").bind(seller);
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
    valid_at(&mut sql, as_of)
        .push(" ORDER BY id LIMIT ")
        .bind(limit);
    Select::new(sql)
}
