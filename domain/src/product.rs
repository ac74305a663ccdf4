//! Products (inventory): price, stock on hand and per-order reservations.
//!
//! Invariant: `stock_available() = stock_on_hand() − stock_reserved() ≥ 0`.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Money, Name, NameError, Quantity, Rejection};

/// The longest product description accepted, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2000;

/// The longest SKU accepted, in characters.
pub const MAX_SKU_LEN: usize = 40;

pub use crate::sku::default_sku;

/// Commands to a product (aggregate id: the product id).
#[derive(Debug, Clone, PartialEq)]
pub enum ProductCommand {
    /// Creates the product.
    Create {
        /// The product id (the aggregate id).
        product_id: Uuid,
        /// The selling account.
        seller: Uuid,
        /// 1..=200 characters after trimming.
        name: String,
        /// At most 2000 characters after trimming (may be empty).
        description: String,
        /// Stock-keeping unit: 1..=40 letters, digits, `-`, `_` or `.` after trimming;
        /// [`default_sku`] when not given.
        sku: Option<String>,
        /// Greater than zero.
        price: Money,
        /// Initial stock on hand (0 allowed).
        stock: u32,
    },
    /// Changes some of name, description and price. At least one must be given; values equal
    /// to the current ones are left out of the event, and if nothing differs no event is
    /// recorded.
    Update {
        /// A new name.
        name: Option<String>,
        /// A new description.
        description: Option<String>,
        /// A new price (greater than zero; any currency).
        price: Option<Money>,
    },
    /// Adds stock on hand.
    Restock {
        /// How much.
        quantity: Quantity,
    },
    /// Sets stock aside for an order: reserved when enough is available, otherwise rejected
    /// (an event, not an error). One reservation per order.
    Reserve {
        /// The order.
        order_id: Uuid,
        /// How much.
        quantity: Quantity,
    },
    /// Returns an open reservation to available stock.
    Release {
        /// The order.
        order_id: Uuid,
    },
    /// Ships an open reservation: stock on hand and reserved both go down.
    CommitReservation {
        /// The order.
        order_id: Uuid,
    },
}

/// What happened to a product. Stored as `{"type": "<event_type>", "data": {..}}`. Schema
/// versions ([`crate::upcast`]): `ProductCreated` is at v2 (v1 had no `sku`), the others at v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProductEvent {
    /// The product exists.
    #[serde(rename = "ProductCreated")]
    ProductCreated {
        /// The product id.
        product_id: Uuid,
        /// The selling account.
        seller: Uuid,
        /// Trimmed name.
        name: String,
        /// Trimmed description.
        description: String,
        /// Stock-keeping unit (since v2; older events get [`default_sku`]).
        sku: String,
        /// Price.
        price: Money,
        /// Initial stock on hand.
        stock: u32,
    },
    /// Some details changed (`None`: unchanged).
    #[serde(rename = "ProductUpdated")]
    ProductUpdated {
        /// New trimmed name.
        name: Option<String>,
        /// New trimmed description.
        description: Option<String>,
        /// New price.
        price: Option<Money>,
    },
    /// Stock on hand went up.
    #[serde(rename = "StockAdded")]
    StockAdded {
        /// How much.
        quantity: Quantity,
    },
    /// Stock was set aside for an order.
    #[serde(rename = "StockReserved")]
    StockReserved {
        /// The order.
        order_id: Uuid,
        /// How much.
        quantity: Quantity,
    },
    /// Not enough stock was available for an order.
    #[serde(rename = "StockReservationRejected")]
    StockReservationRejected {
        /// The order.
        order_id: Uuid,
        /// How much was asked for.
        quantity: Quantity,
        /// How much was available.
        available: u32,
    },
    /// A reservation went back to available stock.
    #[serde(rename = "ReservationReleased")]
    ReservationReleased {
        /// The order.
        order_id: Uuid,
        /// How much.
        quantity: Quantity,
    },
    /// A reservation left the warehouse.
    #[serde(rename = "ReservationCommitted")]
    ReservationCommitted {
        /// The order.
        order_id: Uuid,
        /// How much.
        quantity: Quantity,
    },
}

impl ProductEvent {
    /// The event as it may leave the process (`history`, `events tail`, the relay, …): it
    /// holds no secret, so this is its stored form.
    pub fn public_json(&self) -> serde_json::Value {
        crate::event_json::stored_json(self)
    }
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        match self {
            ProductEvent::ProductCreated { .. } => "ProductCreated",
            ProductEvent::ProductUpdated { .. } => "ProductUpdated",
            ProductEvent::StockAdded { .. } => "StockAdded",
            ProductEvent::StockReserved { .. } => "StockReserved",
            ProductEvent::StockReservationRejected { .. } => "StockReservationRejected",
            ProductEvent::ReservationReleased { .. } => "ReservationReleased",
            ProductEvent::ReservationCommitted { .. } => "ReservationCommitted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version_text(&self.event_type())
    }
}

/// Why a product refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// The product was never created. Kind: [`Rejection::NotFound`].
    #[error("product not found")]
    NotFound,
    /// The product already exists. Kind: [`Rejection::Conflict`].
    #[error("product already created")]
    AlreadyCreated,
    /// The name is not a valid [`Name`]. Kind: [`Rejection::Unprocessable`].
    #[error("invalid name: {0}")]
    InvalidName(NameError),
    /// The description is too long. Kind: [`Rejection::Unprocessable`].
    #[error("description is {actual} characters long, at most {max} allowed")]
    DescriptionTooLong {
        /// The limit.
        max: usize,
        /// Characters found.
        actual: usize,
    },
    /// The description breaks the text rule ([`crate::text`]). Kind:
    /// [`Rejection::Unprocessable`].
    #[error("description {0}")]
    InvalidDescription(crate::TextError),
    /// The SKU is empty, too long or holds other characters than letters, digits, `-`, `_`
    /// and `.`. Kind: [`Rejection::Unprocessable`].
    #[error("sku must be 1 to 40 letters, digits, '-', '_' or '.'")]
    InvalidSku,
    /// The price is zero or negative. Kind: [`Rejection::Unprocessable`].
    #[error("price must be greater than zero")]
    NonPositivePrice,
    /// An update gave no field at all. Kind: [`Rejection::Unprocessable`].
    #[error("nothing to update")]
    NothingToUpdate,
    /// Stock on hand would exceed the representable range. Kind: [`Rejection::Unprocessable`].
    #[error("stock out of range")]
    StockOverflow,
    /// The order already has a reservation (open, rejected, released or committed).
    /// Kind: [`Rejection::Conflict`].
    #[error("order {order_id} already has a reservation")]
    AlreadyReserved {
        /// The order.
        order_id: Uuid,
    },
    /// The order has no reservation to release or commit (never reserved, or rejected).
    /// Kind: [`Rejection::Unprocessable`].
    #[error("order {order_id} has no reservation")]
    NoReservation {
        /// The order.
        order_id: Uuid,
    },
    /// The order's reservation was already released or committed.
    /// Kind: [`Rejection::Conflict`].
    #[error("reservation for order {order_id} is already closed")]
    ReservationClosed {
        /// The order.
        order_id: Uuid,
    },
}

impl ProductError {
    /// The kind of rejection (see each variant).
    pub fn kind(&self) -> Rejection {
        match self {
            ProductError::NotFound => Rejection::NotFound,
            ProductError::AlreadyCreated
            | ProductError::AlreadyReserved { .. }
            | ProductError::ReservationClosed { .. } => Rejection::Conflict,
            ProductError::InvalidName(_)
            | ProductError::DescriptionTooLong { .. }
            | ProductError::InvalidDescription(_)
            | ProductError::InvalidSku
            | ProductError::NonPositivePrice
            | ProductError::NothingToUpdate
            | ProductError::StockOverflow
            | ProductError::NoReservation { .. } => Rejection::Unprocessable,
        }
    }
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Stock is set aside.
    Open,
    /// Not enough stock was available; nothing was set aside.
    Rejected,
    /// Given back.
    Released,
    /// Shipped.
    Committed,
}

/// One order's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// How much was asked for.
    pub quantity: Quantity,
    /// Where it stands.
    pub status: ReservationStatus,
}

/// A product's state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    product_id: Option<Uuid>,
    seller: Option<Uuid>,
    name: String,
    description: String,
    sku: String,
    price: Option<Money>,
    on_hand: u32,
    reserved: u32,
    reservations: BTreeMap<Uuid, Reservation>,
}

impl Product {
    /// The product id, once created.
    pub fn id(&self) -> Option<Uuid> {
        self.product_id
    }

    /// True once created.
    pub fn is_created(&self) -> bool {
        self.product_id.is_some()
    }

    /// The selling account, once created.
    pub fn seller(&self) -> Option<Uuid> {
        self.seller
    }

    /// The name (empty before creation).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The stock-keeping unit (empty before creation).
    pub fn sku(&self) -> &str {
        &self.sku
    }

    /// The price, once created.
    pub fn price(&self) -> Option<Money> {
        self.price
    }

    /// Items in the warehouse, reserved or not.
    pub fn stock_on_hand(&self) -> u32 {
        self.on_hand
    }

    /// Items set aside for open reservations.
    pub fn stock_reserved(&self) -> u32 {
        self.reserved
    }

    /// Items that can still be reserved: on hand − reserved.
    pub fn stock_available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }

    /// The reservation for an order, if there was one.
    pub fn reservation(&self, order_id: Uuid) -> Option<&Reservation> {
        self.reservations.get(&order_id)
    }

    /// Every reservation, by order id.
    pub fn reservations(&self) -> &BTreeMap<Uuid, Reservation> {
        &self.reservations
    }

    fn ensure_created(&self) -> Result<(), ProductError> {
        if self.is_created() {
            Ok(())
        } else {
            Err(ProductError::NotFound)
        }
    }

    fn open_reservation(&self, order_id: Uuid) -> Result<Quantity, ProductError> {
        self.ensure_created()?;
        match self.reservations.get(&order_id) {
            Some(Reservation {
                quantity,
                status: ReservationStatus::Open,
            }) => Ok(*quantity),
            Some(Reservation {
                status: ReservationStatus::Released | ReservationStatus::Committed,
                ..
            }) => Err(ProductError::ReservationClosed { order_id }),
            Some(Reservation {
                status: ReservationStatus::Rejected,
                ..
            })
            | None => Err(ProductError::NoReservation { order_id }),
        }
    }

    fn update_event(
        &self,
        name: Option<String>,
        description: Option<String>,
        price: Option<Money>,
    ) -> Result<Option<ProductEvent>, ProductError> {
        self.ensure_created()?;
        if name.is_none() && description.is_none() && price.is_none() {
            return Err(ProductError::NothingToUpdate);
        }
        let name = name.map(|n| parse_name(&n)).transpose()?;
        let description = description.map(|d| parse_description(&d)).transpose()?;
        if let Some(price) = price {
            check_price(&price)?;
        }
        let name = name.filter(|n| *n != self.name);
        let description = description.filter(|d| *d != self.description);
        let price = price.filter(|p| Some(*p) != self.price);
        if name.is_none() && description.is_none() && price.is_none() {
            return Ok(None);
        }
        Ok(Some(ProductEvent::ProductUpdated {
            name,
            description,
            price,
        }))
    }
}

fn parse_name(name: &str) -> Result<String, ProductError> {
    Name::parse(name)
        .map(Name::into_string)
        .map_err(ProductError::InvalidName)
}

fn parse_description(description: &str) -> Result<String, ProductError> {
    let trimmed = description.trim();
    crate::text::check(trimmed).map_err(ProductError::InvalidDescription)?;
    let actual = trimmed.chars().count();
    if actual > MAX_DESCRIPTION_LEN {
        return Err(ProductError::DescriptionTooLong {
            max: MAX_DESCRIPTION_LEN,
            actual,
        });
    }
    Ok(trimmed.to_owned())
}

fn parse_sku(sku: Option<&str>, product_id: Uuid) -> Result<String, ProductError> {
    let Some(sku) = sku else {
        return Ok(default_sku(product_id));
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if sku.is_empty() || sku.len() > MAX_SKU_LEN || !sku.chars().all(allowed) {
        return Err(ProductError::InvalidSku);
    }
    Ok(sku.to_owned())
}

fn check_price(price: &Money) -> Result<(), ProductError> {
    if price.is_positive() {
        Ok(())
    } else {
        Err(ProductError::NonPositivePrice)
    }
}

impl Aggregate for Product {
    const TYPE: &'static str = "product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ProductCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ProductError> {
        let event = match command {
            ProductCommand::Create {
                product_id,
                seller,
                name,
                description,
                sku,
                price,
                stock,
            } => {
                if self.is_created() {
                    return Err(ProductError::AlreadyCreated);
                }
                let name = parse_name(&name)?;
                let description = parse_description(&description)?;
                let sku = parse_sku(sku.as_deref(), product_id)?;
                check_price(&price)?;
                ProductEvent::ProductCreated {
                    product_id,
                    seller,
                    name,
                    description,
                    sku,
                    price,
                    stock,
                }
            }
            ProductCommand::Update {
                name,
                description,
                price,
            } => match self.update_event(name, description, price)? {
                Some(event) => event,
                None => return Ok(()),
            },
            ProductCommand::Restock { quantity } => {
                self.ensure_created()?;
                self.on_hand
                    .checked_add(quantity.get())
                    .ok_or(ProductError::StockOverflow)?;
                ProductEvent::StockAdded { quantity }
            }
            ProductCommand::Reserve { order_id, quantity } => {
                self.ensure_created()?;
                if self.reservations.contains_key(&order_id) {
                    return Err(ProductError::AlreadyReserved { order_id });
                }
                let available = self.stock_available();
                if quantity.get() > available {
                    ProductEvent::StockReservationRejected {
                        order_id,
                        quantity,
                        available,
                    }
                } else {
                    ProductEvent::StockReserved { order_id, quantity }
                }
            }
            ProductCommand::Release { order_id } => ProductEvent::ReservationReleased {
                order_id,
                quantity: self.open_reservation(order_id)?,
            },
            ProductCommand::CommitReservation { order_id } => ProductEvent::ReservationCommitted {
                order_id,
                quantity: self.open_reservation(order_id)?,
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: ProductEvent) {
        // Events were checked when handled; saturating arithmetic only keeps a corrupt log
        // from panicking a fold.
        match event {
            ProductEvent::ProductCreated {
                product_id,
                seller,
                name,
                description,
                sku,
                price,
                stock,
            } => {
                self.product_id = Some(product_id);
                self.seller = Some(seller);
                self.name = name;
                self.description = description;
                self.sku = sku;
                self.price = Some(price);
                self.on_hand = stock;
            }
            ProductEvent::ProductUpdated {
                name,
                description,
                price,
            } => {
                if let Some(name) = name {
                    self.name = name;
                }
                if let Some(description) = description {
                    self.description = description;
                }
                if let Some(price) = price {
                    self.price = Some(price);
                }
            }
            ProductEvent::StockAdded { quantity } => {
                self.on_hand = self.on_hand.saturating_add(quantity.get());
            }
            ProductEvent::StockReserved { order_id, quantity } => {
                self.reserved = self.reserved.saturating_add(quantity.get());
                self.set_reservation(order_id, quantity, ReservationStatus::Open);
            }
            ProductEvent::StockReservationRejected {
                order_id, quantity, ..
            } => self.set_reservation(order_id, quantity, ReservationStatus::Rejected),
            ProductEvent::ReservationReleased { order_id, quantity } => {
                self.reserved = self.reserved.saturating_sub(quantity.get());
                self.set_reservation(order_id, quantity, ReservationStatus::Released);
            }
            ProductEvent::ReservationCommitted { order_id, quantity } => {
                self.reserved = self.reserved.saturating_sub(quantity.get());
                self.on_hand = self.on_hand.saturating_sub(quantity.get());
                self.set_reservation(order_id, quantity, ReservationStatus::Committed);
            }
        }
    }
}

impl Product {
    fn set_reservation(&mut self, order_id: Uuid, quantity: Quantity, status: ReservationStatus) {
        self.reservations
            .insert(order_id, Reservation { quantity, status });
    }
}
