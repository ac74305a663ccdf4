//! Accounts: registration, logins, refresh-token rotation (with token families), deletion and
//! erasure (the personal fields read `"[erased]"` afterwards).

mod email_registry;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use email_registry::{
    AccountServices, EmailRegistry, EmailRegistryError, InMemoryEmailRegistry,
};

use crate::email::ERASED;
use crate::{Email, Name, NameError, Rejection};

/// The fields of `AccountRegistered`'s `data` that hold personal data or secrets of the account:
/// the store keeps them sealed with the account's personal-data key (erased with it).
pub const PERSONAL_FIELDS: &[&str] = &["email", "name", "password_hash"];

/// What an account may do beyond the policies it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May order (the default).
    #[default]
    Customer,
    /// May also create products.
    Seller,
    /// Everything; created by the CLI only.
    Admin,
}

/// Why a string is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected customer, seller or admin)")]
pub struct RoleError(pub String);

impl Role {
    /// `customer`, `seller` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }

    /// Parses `customer`, `seller` or `admin` (case-insensitive, trimmed).
    pub fn parse(input: &str) -> Result<Role, RoleError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "customer" => Ok(Role::Customer),
            "seller" => Ok(Role::Seller),
            "admin" => Ok(Role::Admin),
            _ => Err(RoleError(input.to_owned())),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Commands to an account (aggregate id: the account id).
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Opens the account. `name` is checked as a [`Name`]; `password_hash` must not be empty.
    Register {
        /// The new account's id (the aggregate id).
        account_id: Uuid,
        /// Must not belong to another account.
        email: Email,
        /// Display name, 1..=200 characters after trimming.
        name: String,
        /// An already-hashed password (the domain never sees the password).
        password_hash: String,
        /// The account's role.
        role: Role,
        /// When the registration happened.
        at: DateTime<Utc>,
    },
    /// Records a successful login.
    RecordLogin {
        /// When.
        at: DateTime<Utc>,
    },
    /// Revokes a refresh token by its `jti`. Revoking it again changes nothing.
    RevokeRefreshToken {
        /// The token id.
        jti: Uuid,
    },
    /// Trades the refresh token `jti` of token family `family` for its successor (rotation).
    /// A first use revokes the token; a second use (reuse: the token was stolen, or replayed)
    /// revokes the whole family instead, so its successors stop working too (OAuth 2.0
    /// Security BCP, refresh token rotation). A token of a revoked family is refused
    /// ([`AccountError::TokenFamilyRevoked`]).
    RotateRefreshToken {
        /// The presented token's id.
        jti: Uuid,
        /// The family it belongs to (the login or registration that started the chain).
        family: Uuid,
    },
    /// Deletes the account; it accepts nothing afterwards.
    Delete {
        /// When.
        at: DateTime<Utc>,
    },
    /// Erases the account (right to erasure): records [`AccountEvent::AccountErased`], after
    /// which its personal fields read `"[erased]"` and it is deleted (if it was not already).
    /// Erasing an erased account changes nothing (no event).
    Erase {
        /// When.
        at: DateTime<Utc>,
    },
}

/// What happened to an account. Stored as `{"type": "<event_type>", "data": {..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    /// The account exists.
    #[serde(rename = "AccountRegistered")]
    AccountRegistered {
        /// The account id.
        account_id: Uuid,
        /// Its e-mail.
        email: Email,
        /// Its trimmed display name.
        name: String,
        /// Its password hash.
        password_hash: String,
        /// Its role.
        role: Role,
        /// When.
        registered_at: DateTime<Utc>,
    },
    /// Someone logged in.
    #[serde(rename = "AccountAuthenticated")]
    AccountAuthenticated {
        /// When.
        at: DateTime<Utc>,
    },
    /// A refresh token may no longer be used.
    #[serde(rename = "RefreshTokenRevoked")]
    RefreshTokenRevoked {
        /// The token id.
        jti: Uuid,
    },
    /// A rotated refresh token was presented again: every token of its family is revoked.
    #[serde(rename = "RefreshTokenFamilyRevoked")]
    RefreshTokenFamilyRevoked {
        /// The family id.
        family: Uuid,
    },
    /// The account is gone.
    #[serde(rename = "AccountDeleted")]
    AccountDeleted {
        /// When.
        at: DateTime<Utc>,
    },
    /// The account's personal data was erased (its key deleted): its personal fields read
    /// `"[erased]"` from now on, and it is deleted. Holds no personal data.
    #[serde(rename = "AccountErased")]
    AccountErased {
        /// When.
        at: DateTime<Utc>,
    },
}

impl AccountEvent {
    /// The event as it may leave the process (`history`, `events tail`, the relay, …): the
    /// stored form without secrets. The password hash and refresh-token ids never leave.
    pub fn public_json(&self) -> serde_json::Value {
        let mut value = crate::event_json::stored_json(self);
        match self {
            AccountEvent::AccountRegistered { .. } => {
                crate::event_json::hide(&mut value, "password_hash")
            }
            AccountEvent::RefreshTokenRevoked { .. } => crate::event_json::hide(&mut value, "jti"),
            AccountEvent::RefreshTokenFamilyRevoked { .. } => {
                crate::event_json::hide(&mut value, "family")
            }
            AccountEvent::AccountAuthenticated { .. }
            | AccountEvent::AccountDeleted { .. }
            | AccountEvent::AccountErased { .. } => {}
        }
        value
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountRegistered { .. } => "AccountRegistered",
            AccountEvent::AccountAuthenticated { .. } => "AccountAuthenticated",
            AccountEvent::RefreshTokenRevoked { .. } => "RefreshTokenRevoked",
            AccountEvent::RefreshTokenFamilyRevoked { .. } => "RefreshTokenFamilyRevoked",
            AccountEvent::AccountDeleted { .. } => "AccountDeleted",
            AccountEvent::AccountErased { .. } => "AccountErased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version_text(&self.event_type())
    }
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The account was never registered. Kind: [`Rejection::NotFound`].
    #[error("account not found")]
    NotRegistered,
    /// The account is already registered. Kind: [`Rejection::Conflict`].
    #[error("account already registered")]
    AlreadyRegistered,
    /// The e-mail belongs to another account. Kind: [`Rejection::Conflict`].
    #[error("email already in use")]
    EmailTaken,
    /// The account was deleted and accepts nothing. Kind: [`Rejection::Unprocessable`].
    #[error("account is deleted")]
    AccountDeleted,
    /// The name is not a valid [`Name`]. Kind: [`Rejection::Unprocessable`].
    #[error("invalid name: {0}")]
    InvalidName(NameError),
    /// The refresh token's family was revoked (one of its tokens was reused). Kind:
    /// [`Rejection::Unprocessable`]; the API answers it as an authentication failure.
    #[error("this refresh token's family was revoked")]
    TokenFamilyRevoked,
    /// The password hash is empty. Kind: [`Rejection::Unprocessable`].
    #[error("password hash is empty")]
    EmptyPasswordHash,
    /// The e-mail registry failed: an infrastructure failure, not a rejection
    /// ([`AccountError::is_infrastructure`] is true). Check that first: `kind()` says
    /// [`Rejection::Conflict`] for it only because it must say something (retrying may work).
    #[error("email registry unavailable: {0}")]
    EmailRegistryUnavailable(String),
}

impl AccountError {
    /// The kind of rejection (see each variant).
    pub fn kind(&self) -> Rejection {
        match self {
            AccountError::NotRegistered => Rejection::NotFound,
            AccountError::AlreadyRegistered | AccountError::EmailTaken => Rejection::Conflict,
            AccountError::AccountDeleted
            | AccountError::TokenFamilyRevoked
            | AccountError::InvalidName(_)
            | AccountError::EmptyPasswordHash => Rejection::Unprocessable,
            AccountError::EmailRegistryUnavailable(_) => Rejection::Conflict,
        }
    }

    /// True when the command failed for an infrastructure reason (the e-mail registry), not
    /// because the domain refused it: answer with a server error, not a rejection.
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, AccountError::EmailRegistryUnavailable(_))
    }
}

/// An account's state, folded from its events.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    account_id: Option<Uuid>,
    email: Option<Email>,
    name: Option<String>,
    password_hash: Option<String>,
    role: Option<Role>,
    registered_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    revoked_tokens: BTreeSet<Uuid>,
    #[serde(default)]
    revoked_families: BTreeSet<Uuid>,
    #[serde(default)]
    erased_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Account {
    /// Like a derived `Debug`, with the password hash redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .field("registered_at", &self.registered_at)
            .field("last_login_at", &self.last_login_at)
            .field("deleted_at", &self.deleted_at)
            .field("revoked_tokens", &self.revoked_tokens)
            .field("revoked_families", &self.revoked_families)
            .field("erased_at", &self.erased_at)
            .finish()
    }
}

impl Account {
    /// The account id, once registered.
    pub fn id(&self) -> Option<Uuid> {
        self.account_id
    }

    /// True once registered (deleted accounts stay registered).
    pub fn is_registered(&self) -> bool {
        self.account_id.is_some()
    }

    /// The e-mail, once registered.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }

    /// The display name, once registered.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The password hash, once registered.
    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }

    /// The role, once registered.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// When it was registered.
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.registered_at
    }

    /// When someone last logged in.
    pub fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.last_login_at
    }

    /// True once deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// True once erased (its personal fields read `"[erased]"`).
    pub fn is_erased(&self) -> bool {
        self.erased_at.is_some()
    }

    /// When it was erased.
    pub fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.erased_at
    }

    /// When it was deleted.
    pub fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.deleted_at
    }

    /// True when the refresh token `jti` was revoked.
    pub fn is_token_revoked(&self, jti: Uuid) -> bool {
        self.revoked_tokens.contains(&jti)
    }

    /// Every revoked refresh-token id.
    pub fn revoked_tokens(&self) -> &BTreeSet<Uuid> {
        &self.revoked_tokens
    }

    /// True when the refresh-token family `family` was revoked (a token of it was reused).
    pub fn is_family_revoked(&self, family: Uuid) -> bool {
        self.revoked_families.contains(&family)
    }

    /// Every revoked refresh-token family.
    pub fn revoked_families(&self) -> &BTreeSet<Uuid> {
        &self.revoked_families
    }

    /// Refuses commands to a deleted or never-registered account.
    fn ensure_active(&self) -> Result<(), AccountError> {
        if self.is_deleted() {
            Err(AccountError::AccountDeleted)
        } else if !self.is_registered() {
            Err(AccountError::NotRegistered)
        } else {
            Ok(())
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = AccountServices;

    async fn handle(
        &mut self,
        command: AccountCommand,
        services: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let event = match command {
            AccountCommand::Register {
                account_id,
                email,
                name,
                password_hash,
                role,
                at,
            } => {
                if self.is_deleted() {
                    return Err(AccountError::AccountDeleted);
                }
                if self.is_registered() {
                    return Err(AccountError::AlreadyRegistered);
                }
                let name = Name::parse(&name).map_err(AccountError::InvalidName)?;
                if password_hash.is_empty() {
                    return Err(AccountError::EmptyPasswordHash);
                }
                let claimed = services
                    .email_registry()
                    .claim(&email, account_id)
                    .await
                    .map_err(|e| AccountError::EmailRegistryUnavailable(e.message().to_owned()))?;
                if !claimed {
                    return Err(AccountError::EmailTaken);
                }
                AccountEvent::AccountRegistered {
                    account_id,
                    email,
                    name: name.into_string(),
                    password_hash,
                    role,
                    registered_at: at,
                }
            }
            AccountCommand::RecordLogin { at } => {
                self.ensure_active()?;
                AccountEvent::AccountAuthenticated { at }
            }
            AccountCommand::RevokeRefreshToken { jti } => {
                self.ensure_active()?;
                if self.is_token_revoked(jti) {
                    return Ok(());
                }
                AccountEvent::RefreshTokenRevoked { jti }
            }
            AccountCommand::RotateRefreshToken { jti, family } => {
                self.ensure_active()?;
                if self.is_family_revoked(family) {
                    return Err(AccountError::TokenFamilyRevoked);
                }
                if self.is_token_revoked(jti) {
                    AccountEvent::RefreshTokenFamilyRevoked { family }
                } else {
                    AccountEvent::RefreshTokenRevoked { jti }
                }
            }
            AccountCommand::Delete { at } => {
                self.ensure_active()?;
                AccountEvent::AccountDeleted { at }
            }
            AccountCommand::Erase { at } => {
                if !self.is_registered() {
                    return Err(AccountError::NotRegistered);
                }
                if self.is_erased() {
                    return Ok(());
                }
                AccountEvent::AccountErased { at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountRegistered {
                account_id,
                email,
                name,
                password_hash,
                role,
                registered_at,
            } => {
                self.account_id = Some(account_id);
                self.email = Some(email);
                self.name = Some(name);
                self.password_hash = Some(password_hash);
                self.role = Some(role);
                self.registered_at = Some(registered_at);
            }
            AccountEvent::AccountAuthenticated { at } => self.last_login_at = Some(at),
            AccountEvent::RefreshTokenRevoked { jti } => {
                self.revoked_tokens.insert(jti);
            }
            AccountEvent::RefreshTokenFamilyRevoked { family } => {
                self.revoked_families.insert(family);
            }
            AccountEvent::AccountDeleted { at } => self.deleted_at = Some(at),
            AccountEvent::AccountErased { at } => {
                if self.email.is_some() {
                    self.email = Some(Email::erased());
                }
                if self.name.is_some() {
                    self.name = Some(ERASED.to_owned());
                }
                if self.password_hash.is_some() {
                    self.password_hash = Some(ERASED.to_owned());
                }
                self.deleted_at = self.deleted_at.or(Some(at));
                self.erased_at = Some(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cqrs_es::test::TestFramework;

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn fixture() -> TestFramework<Account> {
        TestFramework::with(AccountServices::new(Arc::new(InMemoryEmailRegistry::new())))
    }

    fn registered() -> AccountEvent {
        AccountEvent::AccountRegistered {
            account_id: id(1),
            email: Email::parse("ann@example.com").unwrap(),
            name: "Ann".into(),
            password_hash: "$argon2id$x".into(),
            role: Role::Customer,
            registered_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    const FAMILY: u128 = 100;

    fn rotate(jti: u128) -> AccountCommand {
        AccountCommand::RotateRefreshToken {
            jti: id(jti),
            family: id(FAMILY),
        }
    }

    #[tokio::test]
    async fn given_a_fresh_refresh_token_when_it_is_rotated_then_only_that_token_is_revoked() {
        fixture()
            .given(vec![registered()])
            .when_async(rotate(7))
            .await
            .then_expect_events(vec![AccountEvent::RefreshTokenRevoked { jti: id(7) }]);
    }

    #[tokio::test]
    async fn given_a_rotated_refresh_token_when_it_is_presented_again_then_its_family_is_revoked() {
        fixture()
            .given(vec![
                registered(),
                AccountEvent::RefreshTokenRevoked { jti: id(7) },
                AccountEvent::RefreshTokenRevoked { jti: id(8) },
            ])
            .when_async(rotate(7))
            .await
            .then_expect_events(vec![AccountEvent::RefreshTokenFamilyRevoked {
                family: id(FAMILY),
            }]);
    }

    #[tokio::test]
    async fn given_a_revoked_family_when_a_successor_token_is_rotated_then_it_is_refused() {
        fixture()
            .given(vec![
                registered(),
                AccountEvent::RefreshTokenRevoked { jti: id(7) },
                AccountEvent::RefreshTokenFamilyRevoked { family: id(FAMILY) },
            ])
            .when_async(rotate(9))
            .await
            .then_expect_error(AccountError::TokenFamilyRevoked);
    }

    #[tokio::test]
    async fn given_a_revoked_family_when_a_token_of_another_family_is_rotated_then_it_works() {
        fixture()
            .given(vec![
                registered(),
                AccountEvent::RefreshTokenFamilyRevoked { family: id(FAMILY) },
            ])
            .when_async(AccountCommand::RotateRefreshToken {
                jti: id(9),
                family: id(FAMILY + 1),
            })
            .await
            .then_expect_events(vec![AccountEvent::RefreshTokenRevoked { jti: id(9) }]);
    }

    #[test]
    fn a_revoked_family_is_folded_into_the_state_and_hidden_from_the_public_view() {
        let mut account = Account::default();
        account.apply(registered());
        let event = AccountEvent::RefreshTokenFamilyRevoked { family: id(FAMILY) };
        account.apply(event.clone());
        assert!(account.is_family_revoked(id(FAMILY)));
        assert!(!account.is_family_revoked(id(FAMILY + 1)));
        assert_eq!(
            event.public_json(),
            serde_json::json!({"type": "RefreshTokenFamilyRevoked", "data": {}})
        );
    }

    #[tokio::test]
    async fn given_a_registered_account_when_it_is_erased_then_account_erased_is_recorded() {
        fixture()
            .given(vec![registered()])
            .when_async(AccountCommand::Erase {
                at: DateTime::<Utc>::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![AccountEvent::AccountErased {
                at: DateTime::<Utc>::UNIX_EPOCH,
            }]);
    }

    #[tokio::test]
    async fn given_an_erased_account_when_it_is_erased_again_then_nothing_happens() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        fixture()
            .given(vec![registered(), AccountEvent::AccountErased { at }])
            .when_async(AccountCommand::Erase { at })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn given_no_account_when_it_is_erased_then_it_is_not_found() {
        fixture()
            .given_no_previous_events()
            .when_async(AccountCommand::Erase {
                at: DateTime::<Utc>::UNIX_EPOCH,
            })
            .await
            .then_expect_error(AccountError::NotRegistered);
    }

    #[test]
    fn an_erased_account_folds_to_erased_personal_fields_and_is_deleted() {
        let mut account = Account::default();
        account.apply(registered());
        account.apply(AccountEvent::AccountErased {
            at: DateTime::<Utc>::UNIX_EPOCH,
        });
        assert!(account.is_erased() && account.is_deleted());
        assert!(account.email().is_some_and(Email::is_erased));
        assert_eq!(account.name(), Some(ERASED));
        assert_eq!(account.password_hash(), Some(ERASED));
        let stored = serde_json::json!({"type": "AccountRegistered", "data": {
            "account_id": id(1), "email": ERASED, "name": ERASED, "password_hash": ERASED,
            "role": "customer", "registered_at": "2026-01-01T00:00:00Z"}});
        let event: AccountEvent = serde_json::from_value(stored).unwrap();
        assert_eq!(
            event.public_json()["data"]["email"],
            serde_json::json!(ERASED)
        );
    }
}
