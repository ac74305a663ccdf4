//! Sessions: logging in (records `AccountAuthenticated`, starts a token family) and trading a
//! refresh token for a new pair (rotation with reuse detection). Neither is idempotent by key:
//! their answers hold bearer tokens, which are never stored.

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountError, AccountEvent};
use domain::Email;
use eventstore_config::{email_registry, CommandError};
use uuid::Uuid;

use crate::{App, AppError, Kind, Origin};

/// The answer to wrong credentials (the same whichever part was wrong).
pub const BAD_CREDENTIALS: &str = "invalid email or password";
/// The answer to a refresh token presented a second time.
pub const REUSED: &str =
    "this refresh token was already used: every token of its session is revoked, log in again";
/// The answer to a refresh token of a revoked family.
pub const FAMILY_REVOKED: &str =
    "this refresh token was revoked: a refresh token of its session was reused, log in again";
/// The answer to a refresh token of a deleted or unknown account.
pub const GONE: &str = "the account does not exist or was deleted";

/// A new token pair for an account.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub account_id: Uuid,
    /// Its tokens.
    pub tokens: access::TokenPair,
}

fn unauthorized(message: &str) -> AppError {
    AppError::rejected(Kind::Unauthorized, message, None)
}

/// An argon2 hash of a random password, made once per process.
async fn dummy_hash() -> Result<String, AppError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            access::hash_password(Uuid::new_v4().to_string())
                .await
                .map_err(AppError::Failed)
        })
        .await
        .cloned()
}

/// Logs in with e-mail and password. Without an account a dummy hash is verified all the same,
/// so the answer's timing does not tell which e-mails exist.
#[tracing::instrument(skip_all)]
pub async fn log_in(
    app: &App,
    origin: &Origin,
    email: &str,
    password: String,
) -> Result<Session, AppError> {
    let owner = match Email::parse(email) {
        Ok(email) => email_registry::owner(app.store(), &email).await?,
        Err(_) => None,
    };
    let account = match &owner {
        Some(id) => Some(app.store().load_current::<Account>(id).await?.state),
        None => None,
    };
    let (hash, usable) = match account.as_ref().and_then(|a| a.password_hash()) {
        Some(hash) => (hash.to_owned(), true),
        None => (dummy_hash().await?, false),
    };
    let matches = app.passwords().verify(password, hash).await?;
    let (Some(id), Some(account)) = (owner, account) else {
        return Err(unauthorized(BAD_CREDENTIALS));
    };
    if !usable || !matches || account.is_deleted() {
        return Err(unauthorized(BAD_CREDENTIALS));
    }
    app.bus()
        .execute::<Account>(
            &id,
            AccountCommand::RecordLogin { at: Utc::now() },
            app.accounts(),
            &origin.metadata(&id),
        )
        .await?;
    app.cache().load(app.store(), &id).await?;
    let tokens = app.tokens().issue(&id).map_err(AppError::Failed)?;
    session(&id, tokens)
}

fn session(account_id: &str, tokens: access::TokenPair) -> Result<Session, AppError> {
    let account_id = Uuid::parse_str(account_id).map_err(AppError::failed)?;
    Ok(Session { account_id, tokens })
}

/// Trades a refresh token (once) for a new pair of the same family. Presenting an already used
/// one revokes its whole family.
pub async fn refresh(app: &App, origin: &Origin, refresh_token: &str) -> Result<Session, AppError> {
    let claims = app
        .tokens()
        .verify(refresh_token, access::TokenKind::Refresh)?;
    let family = claims.family();
    let committed = match app
        .bus()
        .execute::<Account>(
            &claims.sub,
            AccountCommand::RotateRefreshToken {
                jti: claims.jti,
                family,
            },
            app.accounts(),
            &origin.metadata(&claims.sub),
        )
        .await
    {
        Ok(committed) => committed,
        Err(CommandError::Rejected(AccountError::TokenFamilyRevoked)) => {
            return Err(unauthorized(FAMILY_REVOKED))
        }
        Err(CommandError::Rejected(AccountError::AccountDeleted | AccountError::NotRegistered)) => {
            return Err(unauthorized(GONE))
        }
        Err(error) => return Err(error.into()),
    };
    app.cache().apply_committed_account(&committed);
    match committed.events.as_slice() {
        [AccountEvent::RefreshTokenRevoked { .. }] => {
            let tokens = app
                .tokens()
                .issue_in(&claims.sub, family)
                .map_err(AppError::Failed)?;
            session(&claims.sub, tokens)
        }
        _ => Err(unauthorized(REUSED)),
    }
}

/// Fresh tokens (a new family) for a registered account: the answer to a replayed
/// registration, whose repeated body proves as much as a login.
pub fn issue(app: &App, account_id: Uuid) -> Result<access::TokenPair, AppError> {
    app.tokens()
        .issue(&account_id.to_string())
        .map_err(AppError::Failed)
}
