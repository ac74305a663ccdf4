//! Which stored events concern an order's saga, decoded into [`SagaEvent`]s.

use domain::order::OrderEvent;
use domain::product::ProductEvent;
use domain::wallet::WalletEvent;
use eventstore_config::StoredEvent;
use uuid::Uuid;

use super::state::SagaEvent;

/// The saga's decoding of a stored event: `Some` if it concerns an order's saga.
pub fn saga_event(
    event: &StoredEvent,
) -> Result<Option<(Uuid, SagaEvent)>, eventstore_config::ReadError> {
    let decoded = match event.aggregate_type.as_str() {
        "order" => SagaEvent::Order(event.decode::<OrderEvent>()?),
        "product" => {
            let Ok(product_id) = event.aggregate_id.parse() else {
                return Ok(None);
            };
            SagaEvent::Product {
                product_id,
                event: event.decode::<ProductEvent>()?,
            }
        }
        "wallet" => SagaEvent::Wallet(event.decode::<WalletEvent>()?),
        _ => return Ok(None),
    };
    Ok(decoded
        .order_id(&event.aggregate_id)
        .map(|order_id| (order_id, decoded)))
}
