//! `rm_wallets` (one row version per wallet event: balance) and `rm_wallet_transactions` (one
//! row per money movement: deposit, capture, decline, refund).

use chrono::{DateTime, Utc};
use domain::wallet::WalletEvent;
use eventstore_config::{Sql, StoredEvent};

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};
use crate::select::{valid_at, Select};

/// The wallets read model.
pub struct Wallets;

/// A wallet row.
#[derive(Debug, Clone)]
pub struct WalletRow {
    account_id: String,
    currency: String,
    balance: i64,
}

static TABLE: TableDef = TableDef {
    name: "rm_wallets",
    columns: &[
        col("account_id", Kind::Text),
        col("currency", Kind::Text),
        col("balance", Kind::Int),
    ],
    history: true,
};

static TRANSACTIONS: TableDef = TableDef {
    name: "rm_wallet_transactions",
    columns: &[
        col("global_position", Kind::Int),
        col("account_id", Kind::Text),
        col("kind", Kind::Text),
        col("order_id", Kind::OptText),
        col("amount", Kind::Int),
        col("currency", Kind::Text),
        col("reason", Kind::OptText),
        col("recorded_at", Kind::Time),
    ],
    history: false,
};

impl Model for Wallets {
    type State = WalletRow;
    const NAME: &'static str = "wallets";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = Some(&TABLE);
    const APPENDS: &'static [&'static TableDef] = &[&TRANSACTIONS];

    fn key(event: &StoredEvent) -> Option<String> {
        (event.aggregate_type == "wallet").then(|| event.aggregate_id.clone())
    }

    fn apply(
        state: Option<&WalletRow>,
        event: &StoredEvent,
        appends: &mut Appends,
    ) -> Result<Option<WalletRow>, ApplyError> {
        let decoded: WalletEvent = model::decode(event)?;
        if let WalletEvent::WalletOpened {
            account_id,
            currency,
        } = decoded
        {
            return Ok(Some(WalletRow {
                account_id: account_id.to_string(),
                currency: currency.code().to_string(),
                balance: 0,
            }));
        }
        let mut row = state
            .cloned()
            .ok_or_else(|| ApplyError(format!("{} before WalletOpened", event.event_type)))?;
        let (kind, order_id, amount, reason) = match decoded {
            WalletEvent::WalletOpened { .. } => return Ok(Some(row)),
            WalletEvent::FundsDeposited { amount } => {
                row.balance += amount.amount;
                ("deposit", None, amount, None)
            }
            WalletEvent::PaymentCaptured { order_id, amount } => {
                row.balance -= amount.amount;
                ("capture", Some(order_id), amount, None)
            }
            WalletEvent::PaymentDeclined {
                order_id,
                amount,
                reason,
            } => {
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string));
                ("decline", Some(order_id), amount, reason)
            }
            WalletEvent::PaymentRefunded { order_id, amount } => {
                row.balance += amount.amount;
                ("refund", Some(order_id), amount, None)
            }
        };
        appends.push((
            0,
            vec![
                Val::Int(event.position),
                Val::Text(row.account_id.clone()),
                Val::Text(kind.to_string()),
                Val::OptText(order_id.map(|o| o.to_string())),
                Val::Int(amount.amount),
                Val::Text(amount.currency.code().to_string()),
                Val::OptText(reason),
                Val::Time(event.recorded_at),
            ],
        ));
        Ok(Some(row))
    }

    fn to_vals(s: &WalletRow) -> Vec<Val> {
        vec![
            Val::Text(s.account_id.clone()),
            Val::Text(s.currency.clone()),
            Val::Int(s.balance),
        ]
    }

    fn from_vals(v: &[Val]) -> Result<WalletRow, ApplyError> {
        Ok(WalletRow {
            account_id: model::text(v, 0)?,
            currency: model::text(v, 1)?,
            balance: model::int(v, 2)?,
        })
    }
}

/// A wallet as read: the current row version, or the one valid at a time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletRecord {
    /// The owner (the wallet's id).
    pub account_id: String,
    /// The balance's ISO 4217 code.
    pub currency: String,
    /// The balance, minor units.
    pub balance: i64,
    /// The wallet aggregate's version.
    pub version: i64,
    /// Global position of the last event folded into this version.
    pub last_position: i64,
}

/// One money movement of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransactionRecord {
    /// Global position of the event.
    pub global_position: i64,
    /// `deposit`, `capture`, `decline` or `refund`.
    pub kind: String,
    /// The order paid, declined or refunded.
    pub order_id: Option<String>,
    /// The amount, minor units.
    pub amount: i64,
    /// The amount's ISO 4217 code.
    pub currency: String,
    /// Why a payment was declined.
    pub reason: Option<String>,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

crate::select::plain_record!(WalletRecord, TransactionRecord);

/// The wallet of `account_id`, current or as of a time.
pub fn by_account(account_id: &str, as_of: Option<DateTime<Utc>>) -> Select<WalletRecord> {
    let mut sql = Sql::new(
        "SELECT account_id, currency, balance, version, last_position FROM rm_wallets \
         WHERE account_id = ",
    );
    sql.bind(account_id);
    valid_at(&mut sql, as_of).push(" LIMIT 1");
    Select::new(sql)
}

/// Up to `limit` of a wallet's money movements after global position `after` up to
/// `through`, oldest first.
pub fn transactions(
    account_id: &str,
    after: i64,
    through: i64,
    limit: i64,
) -> Select<TransactionRecord> {
    let mut sql = Sql::new(
        "SELECT global_position, kind, order_id, amount, currency, reason, recorded_at \
         FROM rm_wallet_transactions WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND global_position > ")
        .bind(after)
        .push(" AND global_position <= ")
        .bind(through)
        .push(" ORDER BY global_position LIMIT ")
        .bind(limit);
    Select::new(sql)
}
