//! Single aggregates at a version, folded from the log with the domain's own `apply`
//! (`Store::load_at_version`: the newest snapshot at or below the version bounds the fold).

use eventstore_config::{ReadError, Store};
use read_models::ReadModelError;

use crate::reads;
use crate::types::{Account, Money, Order, OrderItem, PolicySet, Product, Wallet};

/// An aggregate at a version could not be read (the log, or the wallet's position in it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AtVersionError {
    #[error(transparent)]
    Log(#[from] ReadError),
    #[error(transparent)]
    Read(#[from] ReadModelError),
}

type Result<T> = std::result::Result<T, AtVersionError>;

pub(crate) async fn order(store: &Store, id: &str, version: u64) -> Result<Option<Order>> {
    let Some(v) = store
        .load_at_version::<domain::order::Order>(id, version)
        .await?
    else {
        return Ok(None);
    };
    let s = v.state;
    let (Some(order_id), Some(account_id), Some(status), Some(total), Some(placed_at)) =
        (s.id(), s.account_id(), s.status(), s.total(), s.placed_at())
    else {
        return Ok(None);
    };
    Ok(Some(Order {
        id: order_id.to_string().into(),
        account_id: account_id.to_string().into(),
        status: status.into(),
        items: s
            .items()
            .iter()
            .map(|l| OrderItem::from_line(*l, None))
            .collect(),
        total: total.into(),
        amount_due: s.amount_due().map(Money::from),
        reason: s.reason().map(str::to_owned),
        placed_at,
        version: v.version as i64,
    }))
}

pub(crate) async fn product(store: &Store, id: &str, version: u64) -> Result<Option<Product>> {
    let Some(v) = store
        .load_at_version::<domain::product::Product>(id, version)
        .await?
    else {
        return Ok(None);
    };
    let s = v.state;
    let (Some(product_id), Some(seller), Some(price)) = (s.id(), s.seller(), s.price()) else {
        return Ok(None);
    };
    Ok(Some(Product {
        id: product_id.to_string().into(),
        seller_id: seller.to_string().into(),
        name: s.name().to_owned(),
        description: s.description().to_owned(),
        sku: s.sku().to_owned(),
        price: price.into(),
        stock_on_hand: i64::from(s.stock_on_hand()),
        stock_reserved: i64::from(s.stock_reserved()),
        stock_available: i64::from(s.stock_available()),
        version: v.version as i64,
    }))
}

pub(crate) async fn account(store: &Store, id: &str, version: u64) -> Result<Option<Account>> {
    let Some(v) = store
        .load_at_version::<domain::account::Account>(id, version)
        .await?
    else {
        return Ok(None);
    };
    let s = v.state;
    let (Some(account_id), Some(email), Some(name), Some(role), Some(registered_at)) =
        (s.id(), s.email(), s.name(), s.role(), s.registered_at())
    else {
        return Ok(None);
    };
    Ok(Some(Account {
        id: account_id.to_string().into(),
        email: email.as_str().to_owned(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        deleted: s.is_deleted(),
        registered_at,
        version: v.version as i64,
    }))
}

pub(crate) async fn wallet(store: &Store, id: &str, version: u64) -> Result<Option<Wallet>> {
    let Some(v) = store
        .load_at_version::<domain::wallet::Wallet>(id, version)
        .await?
    else {
        return Ok(None);
    };
    let (Some(account_id), Some(balance)) = (v.state.account_id(), v.state.balance()) else {
        return Ok(None);
    };
    let position = reads::position_of(store, "wallet", id, v.version as i64)
        .await?
        .unwrap_or(0);
    Ok(Some(Wallet {
        account_id: account_id.to_string().into(),
        balance: balance.into(),
        version: v.version as i64,
        position,
        as_of: None,
    }))
}

pub(crate) async fn policies(
    store: &Store,
    subject: &str,
    version: u64,
) -> Result<Option<PolicySet>> {
    let Some(v) = store
        .load_at_version::<domain::policy_set::PolicySet>(subject, version)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(PolicySet {
        subject: subject.to_owned(),
        policies: v.state.policies().iter().map(|p| p.to_string()).collect(),
        version: v.version as i64,
    }))
}
