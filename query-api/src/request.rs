//! What one GraphQL request carries: the store, the caller and its per-request DataLoaders.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::Context;
use eventstore_config::Store;

use crate::auth::{Caller, Session};
use crate::budget::Budget;
use crate::db::Reader;
use crate::error::GqlResult;
use crate::loaders::{AccountLoader, ProductLoader};

/// Per-request data (added to every request by the HTTP handler).
pub(crate) struct RequestData {
    pub store: Store,
    pub session: Session,
    pub products: DataLoader<ProductLoader>,
    pub accounts: DataLoader<AccountLoader>,
}

impl RequestData {
    /// The request's data; its DataLoaders' batches run under the request's `budget` too.
    pub(crate) fn new(store: Store, session: Session, budget: Arc<Budget>) -> Self {
        let spawner = |budget: Arc<Budget>| {
            move |batch| tokio::spawn(crate::budget::within(budget.clone(), batch))
        };
        Self {
            products: DataLoader::new(ProductLoader(store.clone()), spawner(budget.clone())),
            accounts: DataLoader::new(AccountLoader(store.clone()), spawner(budget)),
            store,
            session,
        }
    }
}

/// The request's data and its authenticated caller.
pub(crate) async fn caller<'a>(ctx: &Context<'a>) -> GqlResult<(&'a RequestData, Arc<Caller>)> {
    let data = ctx.data::<RequestData>().map_err(|_| {
        crate::error::internal(
            "request data missing: the schema was executed outside the HTTP handler",
        )
    })?;
    let caller = data.session.caller(&data.store).await?;
    Ok((data, caller))
}

/// The request's data after checking the caller is authenticated (for public resources:
/// its policies are not loaded).
pub(crate) fn authenticated<'a>(ctx: &Context<'a>) -> GqlResult<&'a RequestData> {
    let data = ctx.data::<RequestData>().map_err(|_| {
        crate::error::internal(
            "request data missing: the schema was executed outside the HTTP handler",
        )
    })?;
    data.session.subject()?;
    Ok(data)
}

/// The request's data and a reader for one resource the authenticated caller asks for: the
/// caller's policy version is read in the same statement as the resource, so checking the
/// answer against its policies ([`RequestData::caller_after`]) costs no round trip of its
/// own while the cached policies are current.
pub(crate) fn reader<'a>(ctx: &Context<'a>) -> GqlResult<(&'a RequestData, Reader<'a>)> {
    let data = authenticated(ctx)?;
    Ok((data, data.session.reader(&data.store)))
}

impl RequestData {
    /// The caller, after a read through [`reader`].
    pub(crate) async fn caller_after(&self, reader: &Reader<'_>) -> GqlResult<Arc<Caller>> {
        self.session.caller_after(&self.store, reader).await
    }
}
