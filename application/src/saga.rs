//! The order saga's commands on products, orders and wallets: each one aggregate, through the
//! command bus's single-statement path. The saga decides which to issue and how to read a
//! refusal (an effect that already happened counts as done).

use domain::order::{Order, OrderCommand};
use domain::product::{Product, ProductCommand};
use domain::wallet::{Wallet, WalletCommand};
use eventstore_config::{CommandBus, CommandError, Committed, EventMetadata};

/// A product command of the saga (reserve, release, commit a reservation).
pub async fn product(
    bus: &CommandBus,
    product_id: &str,
    command: ProductCommand,
    metadata: &EventMetadata,
) -> Result<Committed<Product>, CommandError<domain::product::ProductError>> {
    bus.execute::<Product>(product_id, command, &(), metadata)
        .await
}

/// An order command of the saga (await payment, approve, reject, cancel).
pub async fn order(
    bus: &CommandBus,
    order_id: &str,
    command: OrderCommand,
    metadata: &EventMetadata,
) -> Result<Committed<Order>, CommandError<domain::order::OrderError>> {
    bus.execute::<Order>(order_id, command, &(), metadata).await
}

/// A wallet command of the saga (charge, refund).
pub async fn wallet(
    bus: &CommandBus,
    wallet_id: &str,
    command: WalletCommand,
    metadata: &EventMetadata,
) -> Result<Committed<Wallet>, CommandError<domain::wallet::WalletError>> {
    bus.execute::<Wallet>(wallet_id, command, &(), metadata)
        .await
}
