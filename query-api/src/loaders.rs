//! DataLoaders for nested look-ups: every product of a page's order items (or every account of
//! its wallets) is fetched with one query per distinct `asOf`, whatever the page size. They
//! batch through the read models' typed reads and answer records (the GraphQL types map them).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use eventstore_config::Store;
use read_models::accounts::{self, AccountRecord};
use read_models::products::{self, ProductRecord};
use read_models::ReadModelError;

use crate::db;

/// A product, current (`as_of: None`) or as of a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProductKey {
    pub id: String,
    pub as_of: Option<DateTime<Utc>>,
}

/// An account, current or as of a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AccountKey {
    pub id: String,
    pub as_of: Option<DateTime<Utc>>,
}

/// Loads products by id.
pub(crate) struct ProductLoader(pub Store);

/// Loads accounts by id.
pub(crate) struct AccountLoader(pub Store);

fn by_time<K, F: Fn(&K) -> (String, Option<DateTime<Utc>>)>(
    keys: &[K],
    split: F,
) -> BTreeMap<Option<DateTime<Utc>>, Vec<String>> {
    let mut groups: BTreeMap<Option<DateTime<Utc>>, Vec<String>> = BTreeMap::new();
    for key in keys {
        let (id, as_of) = split(key);
        groups.entry(as_of).or_default().push(id);
    }
    groups
}

impl Loader<ProductKey> for ProductLoader {
    type Value = ProductRecord;
    type Error = Arc<ReadModelError>;

    async fn load(
        &self,
        keys: &[ProductKey],
    ) -> Result<HashMap<ProductKey, ProductRecord>, Self::Error> {
        let mut out = HashMap::new();
        for (as_of, ids) in by_time(keys, |k| (k.id.clone(), k.as_of)) {
            for product in db::fetch_all(&self.0, &products::by_ids(&ids, as_of)).await? {
                let id = product.id.clone();
                out.insert(ProductKey { id, as_of }, product);
            }
        }
        Ok(out)
    }
}

impl Loader<AccountKey> for AccountLoader {
    type Value = AccountRecord;
    type Error = Arc<ReadModelError>;

    async fn load(
        &self,
        keys: &[AccountKey],
    ) -> Result<HashMap<AccountKey, AccountRecord>, Self::Error> {
        let mut out = HashMap::new();
        for (as_of, ids) in by_time(keys, |k| (k.id.clone(), k.as_of)) {
            for account in db::fetch_all(&self.0, &accounts::by_ids(&ids, as_of)).await? {
                let id = account.id.clone();
                out.insert(AccountKey { id, as_of }, account);
            }
        }
        Ok(out)
    }
}
