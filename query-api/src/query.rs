//! The `Query` root: read models (current or `asOf`), single aggregates `atVersion` (folded
//! from the log), history, audit, policies and projections — each checked against the
//! caller's policies.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, InputObject, Object, OutputType, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::db::Reader;
use crate::error::{bad_input, error, forbidden, Code, GqlResult, OrInternal};
use crate::fold;
use crate::history::{self, DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE};
use crate::reads::{self, AuditFilter, OrderFilter};
use crate::request::{authenticated, caller, reader};
use crate::types::{
    Account, AuditEntry, EventRecord, Order, OrderStatus, PolicySet, Product, ProjectionInfo,
    Wallet,
};

/// Page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// The largest page.
pub const MAX_PAGE: i32 = 100;

/// Which products to list.
#[derive(Debug, Default, Clone, InputObject)]
pub struct ProductFilter {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only this seller's products.
    pub seller_id: Option<ID>,
    /// Only products with available stock (true) or without (false).
    pub in_stock: Option<bool>,
}

/// The read side's root.
#[derive(Debug, Default)]
pub struct Query;

/// Which state of a single aggregate to answer with.
enum At {
    Current,
    AsOf(DateTime<Utc>),
    Version(u64),
}

fn at(as_of: Option<DateTime<Utc>>, at_version: Option<i32>) -> GqlResult<At> {
    match (as_of, at_version) {
        (Some(_), Some(_)) => Err(bad_input("give asOf or atVersion, not both")),
        (Some(t), None) => Ok(At::AsOf(t)),
        (None, Some(v)) if v >= 1 => Ok(At::Version(v as u64)),
        (None, Some(v)) => Err(bad_input(format!("atVersion must be at least 1, got {v}"))),
        (None, None) => Ok(At::Current),
    }
}

fn as_of_only(at: &At) -> Option<DateTime<Utc>> {
    match at {
        At::AsOf(t) => Some(*t),
        _ => None,
    }
}

/// The canonical form of a UUID argument, or BAD_USER_INPUT naming it.
fn uuid(id: &str, argument: &str) -> GqlResult<String> {
    Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| bad_input(format!("{argument} must be a UUID, got {id:?}")))
}

fn found<T>(value: Option<T>, what: &str, id: &str) -> GqlResult<T> {
    value.ok_or_else(|| {
        error(
            Code::NotFound,
            format!("no {what} {id} (at that time or version)"),
        )
    })
}

fn page_size(first: Option<i32>) -> GqlResult<i64> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n if (1..=MAX_PAGE).contains(&n) => Ok(i64::from(n)),
        n => Err(bad_input(format!(
            "first must be between 1 and {MAX_PAGE}, got {n}"
        ))),
    }
}

/// A Relay connection from one row more than the page (which tells whether there is a next
/// page).
fn connection<T: OutputType>(
    mut rows: Vec<T>,
    size: i64,
    has_previous: bool,
    cursor: impl Fn(&T) -> String,
) -> Connection<String, T> {
    let has_next = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let mut page = Connection::new(has_previous, has_next);
    page.edges
        .extend(rows.into_iter().map(|row| Edge::new(cursor(&row), row)));
    page
}

/// Whether `caller` may read `subject`'s policies: its own, or with `get` on `policies:<subject>`.
fn may_read_policies(caller: &Caller, subject: &str) -> bool {
    caller.subject == subject || caller.may_get("policies", subject)
}

/// A wallet's resource id is its account id: readable with `get` on the account or the wallet.
fn may_read_wallet(caller: &Caller, account_id: &str) -> bool {
    caller.may_get("accounts", account_id) || caller.may_get("wallets", account_id)
}

/// The aggregate type for an audit/history resource type: the log's names (`order`) or the
/// ACL's (`orders`).
pub fn aggregate_type(resource_type: &str) -> Option<&'static str> {
    Some(match resource_type {
        "account" | "accounts" => "account",
        "wallet" | "wallets" => "wallet",
        "product" | "products" => "product",
        "order" | "orders" => "order",
        "policy_set" | "policies" => "policy_set",
        "projection" | "projections" => "projection",
        _ => return None,
    })
}

#[Object]
impl Query {
    /// The caller's own account.
    async fn me(&self, ctx: &Context<'_>, as_of: Option<DateTime<Utc>>) -> GqlResult<Account> {
        // Every caller may read its own account: no policies to load.
        let data = authenticated(ctx)?;
        let subject = data.session.subject()?;
        let account = reads::account(&Reader::plain(&data.store), subject, as_of)
            .await
            .or_internal()?;
        found(account, "account", subject)
    }

    /// One account (needs `get` on `accounts:<id>`).
    async fn account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        at_version: Option<i32>,
    ) -> GqlResult<Option<Account>> {
        let at = at(as_of, at_version)?;
        let id = uuid(&id, "id")?;
        let account = match at {
            At::Version(v) => {
                let (data, caller) = caller(ctx).await?;
                caller.require("accounts", &id)?;
                fold::account(&data.store, &id, v).await.or_internal()?
            }
            at => {
                let (data, reader) = reader(ctx)?;
                let account = reads::account(&reader, &id, as_of_only(&at))
                    .await
                    .or_internal()?;
                data.caller_after(&reader).await?.require("accounts", &id)?;
                account
            }
        };
        found(account, "account", &id).map(Some)
    }

    /// One product (every authenticated caller may read products).
    async fn product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        at_version: Option<i32>,
    ) -> GqlResult<Option<Product>> {
        let at = at(as_of, at_version)?;
        let id = uuid(&id, "id")?;
        let data = authenticated(ctx)?;
        let product = match at {
            At::Version(v) => fold::product(&data.store, &id, v).await.or_internal()?,
            at => reads::products_by_id(&data.store, std::slice::from_ref(&id), as_of_only(&at))
                .await
                .or_internal()?
                .into_iter()
                .next(),
        };
        found(product, "product", &id).map(Some)
    }

    /// Products in id order, a page at a time (`after`: the last cursor seen).
    #[graphql(
        complexity = "first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize * child_complexity + 1"
    )]
    async fn products(
        &self,
        ctx: &Context<'_>,
        filter: Option<ProductFilter>,
        as_of: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, Product>> {
        let size = page_size(first)?;
        let data = authenticated(ctx)?;
        let filter = filter.unwrap_or_default();
        let query = read_models::products::ProductFilter {
            name_contains: filter.name_contains,
            seller_id: filter
                .seller_id
                .map(|s| uuid(&s, "filter.sellerId"))
                .transpose()?,
            in_stock: filter.in_stock,
        };
        let rows = reads::products(&data.store, &query, as_of, after.as_deref(), size + 1)
            .await
            .or_internal()?;
        Ok(connection(rows, size, after.is_some(), |p| {
            p.id.to_string()
        }))
    }

    /// One order (needs `get` on `orders:<id>`: its owner, or an admin).
    async fn order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        at_version: Option<i32>,
    ) -> GqlResult<Option<Order>> {
        let at = at(as_of, at_version)?;
        let id = uuid(&id, "id")?;
        let order = match at {
            At::Version(v) => {
                let (data, caller) = caller(ctx).await?;
                caller.require("orders", &id)?;
                fold::order(&data.store, &id, v).await.or_internal()?
            }
            at => {
                let (data, reader) = reader(ctx)?;
                let order = reads::order(&reader, &id, as_of_only(&at))
                    .await
                    .or_internal()?;
                data.caller_after(&reader).await?.require("orders", &id)?;
                order
            }
        };
        found(order, "order", &id).map(Some)
    }

    /// Orders the caller may read, in id order, a page at a time.
    #[graphql(
        complexity = "first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize * child_complexity + 1"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        account_id: Option<ID>,
        status: Option<OrderStatus>,
        as_of: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, Order>> {
        let size = page_size(first)?;
        let account_id = account_id.map(|a| uuid(&a, "accountId")).transpose()?;
        let (data, caller) = caller(ctx).await?;
        let ids = match caller.scope("orders") {
            Scope::All => None,
            Scope::Ids(ids) => Some(ids.into_iter().collect()),
        };
        let filter = OrderFilter {
            account_id,
            status: status.map(Into::into),
            ids,
        };
        let rows = reads::orders(&data.store, &filter, as_of, after.as_deref(), size + 1)
            .await
            .or_internal()?;
        Ok(connection(rows, size, after.is_some(), |o| {
            o.id.to_string()
        }))
    }

    /// An account's wallet (needs `get` on `accounts:<id>` or `wallets:<id>`).
    async fn wallet(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        as_of: Option<DateTime<Utc>>,
        at_version: Option<i32>,
    ) -> GqlResult<Option<Wallet>> {
        let at = at(as_of, at_version)?;
        let id = uuid(&account_id, "accountId")?;
        let forbidden_wallet = || forbidden(&format!("wallets/{id}"));
        let wallet = match at {
            At::Version(v) => {
                let (data, caller) = caller(ctx).await?;
                if !may_read_wallet(&caller, &id) {
                    return Err(forbidden_wallet());
                }
                fold::wallet(&data.store, &id, v).await.or_internal()?
            }
            at => {
                let (data, reader) = reader(ctx)?;
                let wallet = reads::wallet(&reader, &id, as_of_only(&at))
                    .await
                    .or_internal()?;
                let caller = data.caller_after(&reader).await?;
                if !may_read_wallet(&caller, &id) {
                    return Err(forbidden_wallet());
                }
                wallet
            }
        };
        found(wallet, "wallet", &id).map(Some)
    }

    /// A subject's policies (its own, or with `get` on `policies:<subject>`); an empty set
    /// when none were granted (yet).
    async fn policies(
        &self,
        ctx: &Context<'_>,
        subject: String,
        as_of: Option<DateTime<Utc>>,
        at_version: Option<i32>,
    ) -> GqlResult<PolicySet> {
        let at = at(as_of, at_version)?;
        let (data, caller) = caller(ctx).await?;
        if !may_read_policies(&caller, &subject) {
            return Err(forbidden(&format!("policies/{subject}")));
        }
        let set = match at {
            At::Version(v) => found(
                fold::policies(&data.store, &subject, v)
                    .await
                    .or_internal()?,
                "policy set version",
                &subject,
            )?,
            at => reads::policies(&data.store, &subject, as_of_only(&at))
                .await
                .or_internal()?
                .unwrap_or_else(|| PolicySet {
                    subject: subject.clone(),
                    policies: Vec::new(),
                    version: 0,
                }),
        };
        Ok(set)
    }

    /// Whether `subject`'s policies (now, or as of a time) allow the request.
    async fn can(
        &self,
        ctx: &Context<'_>,
        subject: String,
        action: String,
        resource_type: String,
        resource_id: String,
        as_of: Option<DateTime<Utc>>,
    ) -> GqlResult<bool> {
        let (data, caller) = caller(ctx).await?;
        if !may_read_policies(&caller, &subject) {
            return Err(forbidden(&format!("policies/{subject}")));
        }
        let set: domain::policy_set::PolicySet = match as_of {
            None if subject == caller.subject => (*caller.policies).clone(),
            None => {
                data.store
                    .load_current::<domain::policy_set::PolicySet>(&subject)
                    .await
                    .or_internal()?
                    .state
            }
            Some(t) => reads::policies(&data.store, &subject, Some(t))
                .await
                .or_internal()?
                .map(|s| s.policies)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| domain::Policy::parse(p).ok())
                .collect(),
        };
        Ok(set.allows(&subject, &action, &resource_type, &resource_id))
    }

    /// Events of one aggregate, oldest first, with their metadata: up to `first` (default
    /// 100, at most 1000) after version `afterVersion` (default 0: from the start; pass the
    /// last version seen for the next page). Payloads are each event type's public view (no
    /// secrets); on a product that is not the caller's, other customers' order ids, actors and
    /// correlation ids are left out.
    #[graphql(
        complexity = "first.unwrap_or(DEFAULT_HISTORY_PAGE).clamp(1, MAX_HISTORY_PAGE) as usize * child_complexity + 1"
    )]
    async fn history(
        &self,
        ctx: &Context<'_>,
        aggregate_type: String,
        aggregate_id: ID,
        after_version: Option<i32>,
        first: Option<i32>,
    ) -> GqlResult<Vec<EventRecord>> {
        let kind = aggregate_type.as_str();
        let id = aggregate_id.to_string();
        let limit = match first.unwrap_or(DEFAULT_HISTORY_PAGE) {
            n if (1..=MAX_HISTORY_PAGE).contains(&n) => i64::from(n),
            n => {
                return Err(bad_input(format!(
                    "first must be between 1 and {MAX_HISTORY_PAGE}, got {n}"
                )))
            }
        };
        let after_version = match after_version.unwrap_or(0) {
            v if v >= 0 => i64::from(v),
            v => {
                return Err(bad_input(format!(
                    "afterVersion must be 0 or more, got {v}"
                )))
            }
        };
        let (data, caller) = caller(ctx).await?;
        let (allowed, visibility) = history::access(&caller, kind, &id).map_err(bad_input)?;
        if !allowed {
            return Err(forbidden(&format!("the history of {kind}/{id}")));
        }
        history::page(&data.store, kind, &id, after_version, limit, &visibility)
            .await
            .map_err(|e| match e {
                // Not the caller's mistake, but worth saying which event and why.
                e @ history::HistoryError::Unreadable { .. } => {
                    tracing::error!(error = %e, "history has an unreadable event");
                    crate::error::error(crate::error::Code::Internal, e.to_string())
                }
                other => crate::error::internal(other),
            })
    }

    /// Who did what when, in log order (cursor: the global position). Callers may audit
    /// their own actions; other actors need `get` on `audit:<actor>` (admins).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize * child_complexity + 1"
    )]
    async fn audit(
        &self,
        ctx: &Context<'_>,
        actor: Option<String>,
        resource_type: Option<String>,
        resource_id: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, AuditEntry>> {
        let size = page_size(first)?;
        let resource_type = resource_type
            .map(|t| {
                aggregate_type(&t)
                    .map(str::to_owned)
                    .ok_or_else(|| bad_input(format!("unknown resourceType {t:?}")))
            })
            .transpose()?;
        let after_position = match &after {
            None => 0,
            Some(cursor) => cursor
                .parse::<i64>()
                .map_err(|_| bad_input(format!("after is not an audit cursor: {cursor:?}")))?,
        };
        let (data, caller) = caller(ctx).await?;
        let own = actor.as_deref() == Some(caller.subject.as_str());
        if !own && !caller.may_get("audit", actor.as_deref().unwrap_or("*")) {
            return Err(forbidden("the audit of other actors"));
        }
        let filter = AuditFilter {
            actor,
            resource_type,
            resource_id,
            from,
            to,
        };
        let rows = reads::audit(&data.store, &filter, after_position, size + 1)
            .await
            .or_internal()?;
        Ok(connection(rows, size, after.is_some(), |a| {
            a.position.to_string()
        }))
    }

    /// Every projection's checkpoint, lag and state (admins: `get` on `projections:*`).
    async fn projections(&self, ctx: &Context<'_>) -> GqlResult<Vec<ProjectionInfo>> {
        let (data, caller) = caller(ctx).await?;
        caller.require("projections", "*")?;
        reads::projections(&data.store).await.or_internal()
    }
}
