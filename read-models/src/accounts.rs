//! `rm_accounts`: one row version per account event. `AccountErased` overwrites the e-mail and
//! name of every row version of the account, history included, with `"[erased]"`.

use chrono::{DateTime, Utc};
use domain::account::AccountEvent;
use domain::email::ERASED;
use eventstore_config::StoredEvent;

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};

/// The accounts read model.
pub struct Accounts;

/// An account row.
#[derive(Debug, Clone)]
pub struct AccountRow {
    id: String,
    email: String,
    name: String,
    role: String,
    deleted: bool,
    registered_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
}

static TABLE: TableDef = TableDef {
    name: "rm_accounts",
    columns: &[
        col("id", Kind::Text),
        col("email", Kind::Text),
        col("name", Kind::Text),
        col("role", Kind::Text),
        col("deleted", Kind::Bool),
        col("registered_at", Kind::Time),
        col("last_login_at", Kind::OptTime),
        col("deleted_at", Kind::OptTime),
    ],
    history: true,
};

impl Model for Accounts {
    type State = AccountRow;
    const NAME: &'static str = "accounts";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = Some(&TABLE);
    const APPENDS: &'static [&'static TableDef] = &[];

    fn key(event: &StoredEvent) -> Option<String> {
        (event.aggregate_type == "account").then(|| event.aggregate_id.clone())
    }

    fn apply(
        state: Option<&AccountRow>,
        event: &StoredEvent,
        _: &mut Appends,
    ) -> Result<Option<AccountRow>, ApplyError> {
        let row = match (model::decode::<AccountEvent>(event)?, state) {
            (
                AccountEvent::AccountRegistered {
                    account_id,
                    email,
                    name,
                    role,
                    registered_at,
                    ..
                },
                _,
            ) => AccountRow {
                id: account_id.to_string(),
                email: email.as_str().to_string(),
                name,
                role: role.as_str().to_string(),
                deleted: false,
                registered_at,
                last_login_at: None,
                deleted_at: None,
            },
            (_, None) => {
                return Err(ApplyError(format!(
                    "{} before AccountRegistered",
                    event.event_type
                )))
            }
            (AccountEvent::AccountAuthenticated { at }, Some(s)) => AccountRow {
                last_login_at: Some(at),
                ..s.clone()
            },
            (
                AccountEvent::RefreshTokenRevoked { .. }
                | AccountEvent::RefreshTokenFamilyRevoked { .. },
                Some(s),
            ) => s.clone(),
            (AccountEvent::AccountDeleted { at }, Some(s)) => AccountRow {
                deleted: true,
                deleted_at: Some(at),
                ..s.clone()
            },
            (AccountEvent::AccountErased { at }, Some(s)) => AccountRow {
                email: ERASED.to_owned(),
                name: ERASED.to_owned(),
                deleted: true,
                deleted_at: s.deleted_at.or(Some(at)),
                ..s.clone()
            },
        };
        Ok(Some(row))
    }

    const SCRUBBED: &'static [(&'static str, &'static str)] =
        &[("email", ERASED), ("name", ERASED)];

    fn scrub(event: &StoredEvent) -> &'static [(&'static str, &'static str)] {
        if event.event_type == "AccountErased" {
            Self::SCRUBBED
        } else {
            &[]
        }
    }

    fn to_vals(s: &AccountRow) -> Vec<Val> {
        vec![
            Val::Text(s.id.clone()),
            Val::Text(s.email.clone()),
            Val::Text(s.name.clone()),
            Val::Text(s.role.clone()),
            Val::Bool(s.deleted),
            Val::Time(s.registered_at),
            Val::OptTime(s.last_login_at),
            Val::OptTime(s.deleted_at),
        ]
    }

    fn from_vals(v: &[Val]) -> Result<AccountRow, ApplyError> {
        Ok(AccountRow {
            id: model::text(v, 0)?,
            email: model::text(v, 1)?,
            name: model::text(v, 2)?,
            role: model::text(v, 3)?,
            deleted: model::boolean(v, 4)?,
            registered_at: model::time(v, 5)?,
            last_login_at: model::opt_time(v, 6),
            deleted_at: model::opt_time(v, 7),
        })
    }
}

// The reads.

use eventstore_config::Sql;

use crate::select::{valid_at, Select};

/// An account as read: the current row version, or the one valid at a time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRecord {
    /// Account id.
    pub id: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `customer`, `seller` or `admin`.
    pub role: String,
    /// True once deleted.
    pub deleted: bool,
    /// When it registered.
    pub registered_at: DateTime<Utc>,
    /// The account aggregate's version.
    pub version: i64,
}

crate::select::plain_record!(AccountRecord);

const SELECT: &str = "SELECT id, email, name, role, deleted, registered_at, version \
     FROM rm_accounts WHERE 1 = 1";

/// The account `id`, current or as of a time.
pub fn by_id(id: &str, as_of: Option<DateTime<Utc>>) -> Select<AccountRecord> {
    let mut sql = Sql::new(SELECT);
    sql.push(" AND id = ").bind(id);
    valid_at(&mut sql, as_of).push(" LIMIT 1");
    Select::new(sql)
}

/// The accounts with these ids, current or as of a time.
pub fn by_ids(ids: &[String], as_of: Option<DateTime<Utc>>) -> Select<AccountRecord> {
    let mut sql = Sql::new(SELECT);
    sql.in_list("id", ids);
    valid_at(&mut sql, as_of);
    Select::new(sql)
}
