//! The reads behind the `Query` root: the read models' typed reads (current rows, or the row
//! versions valid at a time — both served by indexes, never a replay), run admitted and
//! counted through [`crate::db`] and mapped to the GraphQL types; and the reads of the log and
//! the projection checkpoints (typed functions of `eventstore_config::log` and `::followers`).

use chrono::{DateTime, Utc};
use eventstore_config::Store;
use read_models::{accounts, audit as audit_log, orders, policies as policy_sets, products};
use read_models::{wallets, ReadModelError};

use crate::db::{self, Reader};
use crate::types::{Account, AuditEntry, Order, PolicySet, Product, ProjectionInfo, Wallet};

pub use read_models::audit::AuditFilter;
pub(crate) use read_models::orders::OrderFilter;

type Result<T> = std::result::Result<T, ReadModelError>;

/// One order, current or as of a time.
pub(crate) async fn order(
    reader: &Reader<'_>,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Order>> {
    let order = reader.fetch_optional(&orders::by_id(id, as_of)).await?;
    Ok(order.map(|o| Order::from_record(o, as_of)))
}

/// Up to `limit` orders after the cursor id, in id order.
pub(crate) async fn orders(
    store: &Store,
    filter: &OrderFilter,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Order>> {
    let page = orders::page(filter, as_of, after, limit);
    Ok(db::fetch_all(store, &page)
        .await?
        .into_iter()
        .map(|o| Order::from_record(o, as_of))
        .collect())
}

/// Products with these ids (current or as of a time).
pub(crate) async fn products_by_id(
    store: &Store,
    ids: &[String],
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Product>> {
    let rows = db::fetch_all(store, &products::by_ids(ids, as_of)).await?;
    Ok(rows.into_iter().map(Product::from).collect())
}

/// Up to `limit` products after the cursor id, in id order.
pub(crate) async fn products(
    store: &Store,
    filter: &products::ProductFilter,
    as_of: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Product>> {
    let page = products::page(filter, as_of, after, limit);
    let rows = db::fetch_all(store, &page).await?;
    Ok(rows.into_iter().map(Product::from).collect())
}

/// One account, current or as of a time.
pub(crate) async fn account(
    reader: &Reader<'_>,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Account>> {
    let account = reader.fetch_optional(&accounts::by_id(id, as_of)).await?;
    Ok(account.map(Account::from))
}

/// One wallet, current or as of a time.
pub(crate) async fn wallet(
    reader: &Reader<'_>,
    account_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Wallet>> {
    let wallet = reader
        .fetch_optional(&wallets::by_account(account_id, as_of))
        .await?;
    Ok(wallet.map(|w| Wallet::from_record(w, as_of)))
}

/// One subject's policies, current or as of a time.
pub(crate) async fn policies(
    store: &Store,
    subject: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<PolicySet>> {
    let set = db::fetch_optional(store, &policy_sets::by_subject(subject, as_of)).await?;
    Ok(set.map(PolicySet::from))
}

/// Up to `limit` audit entries after position `after`, in log order: who did what when.
pub async fn audit(
    store: &Store,
    filter: &AuditFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    let rows = db::fetch_all(store, &audit_log::page(filter, after, limit)).await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

/// Every projection with a checkpoint (rebuild checkpoints excluded), with its lag.
pub(crate) async fn projections(store: &Store) -> Result<Vec<ProjectionInfo>> {
    let rows = db::counted(eventstore_config::followers::followers(store)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let lag = db::counted(store.count_above(row.global_position)).await?;
        out.push(ProjectionInfo {
            name: row.name,
            position: row.global_position,
            lag,
            state: row.state.unwrap_or_else(|| "idle".to_owned()),
        });
    }
    Ok(out)
}

/// The global position of an aggregate's event at `version`.
pub(crate) async fn position_of(
    store: &Store,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
) -> Result<Option<i64>> {
    Ok(db::counted(store.position_of(aggregate_type, aggregate_id, version)).await?)
}
