//! The use cases' one error type: a rejection (the caller's request cannot be carried out, with
//! its kind) or a failure (the infrastructure's), never mixed up.

use domain::account::AccountError;
use domain::order::OrderError;
use domain::policy_set::PolicySetError;
use domain::product::ProductError;
use domain::wallet::WalletError;
use domain::Rejection;
use eventstore_config::{CommandError, CommitError, Contended, ReadError};

/// What kind of rejection: how an interface answers it (REST status, GraphQL code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The addressed resource does not exist (404).
    NotFound,
    /// The request clashes with the current state (409).
    Conflict,
    /// The request is not a valid command (422).
    Unprocessable,
    /// The caller may not do this (403).
    Forbidden,
    /// The credentials or token are not good (401).
    Unauthorized,
    /// Too many attempts; retry after a while (429).
    TooManyRequests,
}

/// A rejected request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejected {
    /// Its kind.
    pub kind: Kind,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// The aggregate's current version, for a stale expected version.
    pub current_version: Option<u64>,
    /// Seconds to wait before trying again, for [`Kind::TooManyRequests`].
    pub retry_after_secs: Option<u64>,
}

impl Rejected {
    /// A rejection of `kind` naming `field`.
    pub fn new(kind: Kind, message: impl Into<String>, field: Option<&str>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: field.map(str::to_owned),
            current_version: None,
            retry_after_secs: None,
        }
    }
}

/// Why a use case was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request was refused; nothing changed.
    #[error(transparent)]
    Rejected(Rejected),
    /// Concurrent writers won every attempt; nothing changed.
    #[error("the resource kept changing concurrently; gave up after {attempts} attempts")]
    Contended {
        /// How many times the use case ran.
        attempts: u32,
    },
    /// A statement the caller added (a `Record`) hit a unique key, so another
    /// request with the same record committed first; nothing of this one changed.
    #[error("the statement {0} hit a unique key")]
    Duplicate(&'static str),
    /// The server is too busy now (password hashing); retry after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        /// What is busy.
        message: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The infrastructure failed.
    #[error("the use case failed")]
    Failed(#[source] anyhow::Error),
}

impl AppError {
    /// A rejection of `kind` naming `field`.
    pub fn rejected(kind: Kind, message: impl Into<String>, field: Option<&str>) -> Self {
        AppError::Rejected(Rejected::new(kind, message, field))
    }

    /// A failure caused by `error`.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        AppError::Failed(error.into())
    }

    /// The rejection, if this is one.
    pub fn as_rejected(&self) -> Option<&Rejected> {
        match self {
            AppError::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

impl Contended for AppError {
    fn is_conflict(&self) -> bool {
        matches!(self, AppError::Contended { .. })
    }
}

impl From<CommitError> for AppError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Conflict => AppError::Contended { attempts: 0 },
            CommitError::Duplicate(name) => AppError::Duplicate(name),
            CommitError::Failed(e) => {
                AppError::Failed(anyhow::Error::from_boxed(e).context("the event store failed"))
            }
        }
    }
}

impl From<ReadError> for AppError {
    fn from(error: ReadError) -> Self {
        AppError::failed(error)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::failed(error)
    }
}

impl From<access::PasswordError> for AppError {
    fn from(error: access::PasswordError) -> Self {
        match error {
            access::PasswordError::Busy { retry_after } => AppError::Busy {
                message: error.to_string(),
                retry_after_secs: retry_after.as_secs().max(1),
            },
            access::PasswordError::Internal(cause) => AppError::Failed(cause),
        }
    }
}

impl From<access::Throttled> for AppError {
    fn from(error: access::Throttled) -> Self {
        AppError::Rejected(Rejected {
            kind: Kind::TooManyRequests,
            message: error.to_string(),
            field: match error.scope {
                access::Scope::Account => Some("email".to_owned()),
                access::Scope::Address => None,
            },
            current_version: None,
            retry_after_secs: Some(error.retry_after.as_secs().max(1)),
        })
    }
}

impl From<access::AuthError> for AppError {
    fn from(error: access::AuthError) -> Self {
        match error {
            access::AuthError::Missing | access::AuthError::Invalid(_) => {
                AppError::rejected(Kind::Unauthorized, error.to_string(), None)
            }
            access::AuthError::Unavailable(cause) => AppError::Failed(cause),
        }
    }
}

impl From<access::cache::CacheError> for AppError {
    fn from(error: access::cache::CacheError) -> Self {
        AppError::failed(error)
    }
}

/// A domain error the use cases answer with: its rejection kind and the request field it is
/// about, when there is one.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// Not found, conflict or unprocessable.
    fn kind(&self) -> Rejection;
    /// The request field at fault.
    fn field(&self) -> Option<&'static str> {
        None
    }
    /// True when the failure is the infrastructure's, not the caller's.
    fn is_infrastructure(&self) -> bool {
        false
    }
}

impl DomainError for AccountError {
    fn kind(&self) -> Rejection {
        AccountError::kind(self)
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            AccountError::EmailTaken => Some("email"),
            AccountError::InvalidName(_) => Some("name"),
            AccountError::EmptyPasswordHash => Some("password"),
            _ => None,
        }
    }
    fn is_infrastructure(&self) -> bool {
        AccountError::is_infrastructure(self)
    }
}

impl DomainError for WalletError {
    fn kind(&self) -> Rejection {
        WalletError::kind(self)
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            WalletError::NonPositiveAmount | WalletError::AmountOverflow => Some("amount"),
            WalletError::CurrencyMismatch { .. } => Some("currency"),
            _ => None,
        }
    }
}

impl DomainError for ProductError {
    fn kind(&self) -> Rejection {
        ProductError::kind(self)
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            ProductError::InvalidName(_) => Some("name"),
            ProductError::DescriptionTooLong { .. } | ProductError::InvalidDescription(_) => {
                Some("description")
            }
            ProductError::InvalidSku => Some("sku"),
            ProductError::NonPositivePrice => Some("price"),
            ProductError::StockOverflow => Some("quantity"),
            _ => None,
        }
    }
}

impl DomainError for OrderError {
    fn kind(&self) -> Rejection {
        OrderError::kind(self)
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            OrderError::EmptyOrder
            | OrderError::TooManyItems { .. }
            | OrderError::DuplicateItem { .. } => Some("items"),
            OrderError::CurrencyMismatch { .. } => Some("currency"),
            _ => None,
        }
    }
}

impl DomainError for PolicySetError {
    fn kind(&self) -> Rejection {
        PolicySetError::kind(self)
    }
}

/// A domain error as a rejection (or, for an infrastructure error, a failure).
pub fn domain_error<E: DomainError>(e: E) -> AppError {
    if e.is_infrastructure() {
        return AppError::failed(e);
    }
    let kind = match e.kind() {
        Rejection::NotFound => Kind::NotFound,
        Rejection::Conflict => Kind::Conflict,
        Rejection::Unprocessable => Kind::Unprocessable,
    };
    AppError::rejected(kind, e.to_string(), e.field())
}

impl<E: DomainError> From<CommandError<E>> for AppError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(e) => domain_error(e),
            CommandError::VersionMismatch { expected, actual } => AppError::Rejected(Rejected {
                current_version: Some(actual),
                ..Rejected::new(
                    Kind::Conflict,
                    format!(
                        "If-Match names version {expected}, but the current version is {actual}"
                    ),
                    None,
                )
            }),
            CommandError::Conflict { attempts } => AppError::Contended { attempts },
            CommandError::Infrastructure(e) => {
                AppError::Failed(anyhow::Error::from_boxed(e).context("the event store failed"))
            }
        }
    }
}
