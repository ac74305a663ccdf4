//! Products: creation (the product and its seller's grant in one unit of work), updates and
//! restocking.

use domain::product::{Product, ProductCommand};
use domain::{Currency, Money, Quantity};
use eventstore_config::EventMetadata;
use uuid::Uuid;

use crate::policies::decide_grant;
use crate::unit::{cache_policies, commit, run};
use crate::{App, AppError, Done, Kind, Record};

/// A new product.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// 1 to 200 characters.
    pub name: String,
    /// At most 2000 characters.
    pub description: String,
    /// Stock-keeping unit (1 to 40 letters, digits, `-`, `_`, `.`); generated when `None`
    /// ([`domain::product::default_sku`]).
    pub sku: Option<String>,
    /// Unit price, greater than zero.
    pub price: Money,
    /// Initial stock on hand.
    pub stock: u32,
}

/// A created product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The new product's id.
    pub product_id: Uuid,
    /// Its version and position.
    pub done: Done,
}

/// Creates a product sold by `seller`, who may then do anything with it.
pub async fn create_product(
    app: &App,
    metadata: &EventMetadata,
    seller: Uuid,
    product: NewProduct,
    record: Record<'_, Created>,
) -> Result<Created, AppError> {
    let product_id = Uuid::now_v7();
    let id = product_id.to_string();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Product>(
                &id,
                ProductCommand::Create {
                    product_id,
                    seller,
                    name: product.name.clone(),
                    description: product.description.clone(),
                    sku: product.sku.clone(),
                    price: product.price,
                    stock: product.stock,
                },
                &(),
                None,
            )
            .await?;
        let grant = decide_grant(&mut unit, &format!("{seller}:*:products:{id}")).await?;
        let (commit, created) = commit(unit, record, |c| Created {
            product_id,
            done: Done {
                version: decided.version,
                position: c.last_position(),
            },
        })
        .await?;
        cache_policies(app, &commit, std::slice::from_ref(&grant));
        Ok(created)
    })
    .await
}

/// Changes to a product; at least one.
#[derive(Debug, Clone, Default)]
pub struct ProductUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new unit price in minor units.
    pub price: Option<i64>,
    /// The new price's currency (default: the current price's); only with `price`.
    pub currency: Option<Currency>,
}

/// Changes a product's name, description or price.
pub async fn update_product(
    app: &App,
    metadata: &EventMetadata,
    product_id: Uuid,
    update: ProductUpdate,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    let id = product_id.to_string();
    if update.price.is_none() && update.currency.is_some() {
        return Err(AppError::rejected(
            Kind::Unprocessable,
            "currency is given only together with price",
            Some("currency"),
        ));
    }
    run(app, || async {
        let price = match (update.price, update.currency) {
            (Some(amount), Some(currency)) => Some(Money::new(amount, currency)),
            (Some(amount), None) => {
                let current = app.store().load_current::<Product>(&id).await?.state;
                let currency = current.price().map(|p| p.currency).ok_or_else(|| {
                    AppError::rejected(Kind::NotFound, "product not found", Some("id"))
                })?;
                Some(Money::new(amount, currency))
            }
            _ => None,
        };
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Product>(
                &id,
                ProductCommand::Update {
                    name: update.name.clone(),
                    description: update.description.clone(),
                    price,
                },
                &(),
                expected,
            )
            .await?;
        let (_, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<Product>(&id),
        })
        .await?;
        Ok(done)
    })
    .await
}

/// Adds `quantity` to a product's stock on hand.
pub async fn restock(
    app: &App,
    metadata: &EventMetadata,
    product_id: Uuid,
    quantity: Quantity,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    let id = product_id.to_string();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Product>(&id, ProductCommand::Restock { quantity }, &(), expected)
            .await?;
        let (_, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<Product>(&id),
        })
        .await?;
        Ok(done)
    })
    .await
}
