//! Account aggregate: given / when / then.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{at, id, round_trip};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::account::{
    Account, AccountCommand, AccountError, AccountEvent, AccountServices, EmailRegistry,
    EmailRegistryError, InMemoryEmailRegistry, Role,
};
use domain::{Email, NameError, Rejection};
use serde_json::json;
use uuid::Uuid;

type Fixture = TestFramework<Account>;

const ALICE: u128 = 1;

fn alice_email() -> Email {
    Email::parse("alice@example.com").unwrap()
}

fn registry() -> Arc<InMemoryEmailRegistry> {
    Arc::new(InMemoryEmailRegistry::new())
}

fn fixture() -> Fixture {
    Fixture::with(AccountServices::new(registry()))
}

fn fixture_with(registry: Arc<InMemoryEmailRegistry>) -> Fixture {
    Fixture::with(AccountServices::new(registry))
}

fn register(name: &str, password_hash: &str) -> AccountCommand {
    AccountCommand::Register {
        account_id: id(ALICE),
        email: alice_email(),
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
        role: Role::Customer,
        at: at(0),
    }
}

fn registered() -> AccountEvent {
    AccountEvent::AccountRegistered {
        account_id: id(ALICE),
        email: alice_email(),
        name: "Alice".to_owned(),
        password_hash: "$argon2id$hash".to_owned(),
        role: Role::Customer,
        registered_at: at(0),
    }
}

fn deleted() -> AccountEvent {
    AccountEvent::AccountDeleted { at: at(9) }
}

/// A registry whose backing store is down.
struct UnavailableRegistry;

#[async_trait]
impl EmailRegistry for UnavailableRegistry {
    async fn claim(&self, _: &Email, _: Uuid) -> Result<bool, EmailRegistryError> {
        Err(EmailRegistryError::new("connection refused"))
    }
}

// ---- Register ----------------------------------------------------------------------------

#[tokio::test]
async fn registering_a_new_account_records_it_with_a_trimmed_name() {
    fixture()
        .given_no_previous_events()
        .when_async(register("  Alice ", "$argon2id$hash"))
        .await
        .then_expect_events(vec![registered()]);
}

#[tokio::test]
async fn registering_claims_the_email_for_the_account() {
    let registry = registry();
    fixture_with(registry.clone())
        .given_no_previous_events()
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .then_expect_events(vec![registered()]);
    assert_eq!(registry.owner(&alice_email()), Some(id(ALICE)));
}

#[tokio::test]
async fn a_retried_registration_with_the_same_account_id_succeeds() {
    let registry = registry();
    registry.claim(&alice_email(), id(ALICE)).await.unwrap();
    fixture_with(registry)
        .given_no_previous_events()
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .then_expect_events(vec![registered()]);
}

#[tokio::test]
async fn registering_twice_is_rejected_as_already_registered() {
    fixture()
        .given(vec![registered()])
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .then_expect_error(AccountError::AlreadyRegistered);
}

#[tokio::test]
async fn registering_with_an_email_held_by_another_account_is_rejected() {
    let registry = registry();
    registry.claim(&alice_email(), id(99)).await.unwrap();
    fixture_with(registry.clone())
        .given_no_previous_events()
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .then_expect_error(AccountError::EmailTaken);
    assert_eq!(registry.owner(&alice_email()), Some(id(99)));
}

#[tokio::test]
async fn registering_with_an_empty_name_is_rejected_without_claiming_the_email() {
    let registry = registry();
    fixture_with(registry.clone())
        .given_no_previous_events()
        .when_async(register("   ", "$argon2id$hash"))
        .await
        .then_expect_error(AccountError::InvalidName(NameError::Empty));
    assert_eq!(registry.owner(&alice_email()), None);
}

#[tokio::test]
async fn registering_with_a_name_longer_than_200_characters_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(register(&"a".repeat(201), "$argon2id$hash"))
        .await
        .then_expect_error(AccountError::InvalidName(NameError::TooLong {
            max: 200,
            actual: 201,
        }));
}

#[tokio::test]
async fn registering_with_an_empty_password_hash_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(register("Alice", ""))
        .await
        .then_expect_error(AccountError::EmptyPasswordHash);
}

#[tokio::test]
async fn an_unavailable_email_registry_fails_registration_as_infrastructure() {
    let err = Fixture::with(AccountServices::new(Arc::new(UnavailableRegistry)))
        .given_no_previous_events()
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        err,
        AccountError::EmailRegistryUnavailable("connection refused".to_owned())
    );
    assert!(err.is_infrastructure());
}

#[tokio::test]
async fn registering_a_deleted_account_is_rejected_as_deleted() {
    fixture()
        .given(vec![registered(), deleted()])
        .when_async(register("Alice", "$argon2id$hash"))
        .await
        .then_expect_error(AccountError::AccountDeleted);
}

// ---- RecordLogin -------------------------------------------------------------------------

#[tokio::test]
async fn recording_a_login_records_an_authentication() {
    fixture()
        .given(vec![registered()])
        .when_async(AccountCommand::RecordLogin { at: at(5) })
        .await
        .then_expect_events(vec![AccountEvent::AccountAuthenticated { at: at(5) }]);
}

#[tokio::test]
async fn recording_a_login_before_registration_is_rejected_as_not_registered() {
    fixture()
        .given_no_previous_events()
        .when_async(AccountCommand::RecordLogin { at: at(5) })
        .await
        .then_expect_error(AccountError::NotRegistered);
}

#[tokio::test]
async fn recording_a_login_on_a_deleted_account_is_rejected() {
    fixture()
        .given(vec![registered(), deleted()])
        .when_async(AccountCommand::RecordLogin { at: at(10) })
        .await
        .then_expect_error(AccountError::AccountDeleted);
}

// ---- RevokeRefreshToken ------------------------------------------------------------------

#[tokio::test]
async fn revoking_a_refresh_token_records_the_revocation() {
    fixture()
        .given(vec![registered()])
        .when_async(AccountCommand::RevokeRefreshToken { jti: id(7) })
        .await
        .then_expect_events(vec![AccountEvent::RefreshTokenRevoked { jti: id(7) }]);
}

#[tokio::test]
async fn revoking_an_already_revoked_token_records_nothing() {
    fixture()
        .given(vec![
            registered(),
            AccountEvent::RefreshTokenRevoked { jti: id(7) },
        ])
        .when_async(AccountCommand::RevokeRefreshToken { jti: id(7) })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn revoking_a_token_before_registration_is_rejected_as_not_registered() {
    fixture()
        .given_no_previous_events()
        .when_async(AccountCommand::RevokeRefreshToken { jti: id(7) })
        .await
        .then_expect_error(AccountError::NotRegistered);
}

#[tokio::test]
async fn revoking_a_token_on_a_deleted_account_is_rejected() {
    fixture()
        .given(vec![registered(), deleted()])
        .when_async(AccountCommand::RevokeRefreshToken { jti: id(7) })
        .await
        .then_expect_error(AccountError::AccountDeleted);
}

// ---- Delete ------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_an_account_records_the_deletion() {
    fixture()
        .given(vec![registered()])
        .when_async(AccountCommand::Delete { at: at(9) })
        .await
        .then_expect_events(vec![deleted()]);
}

#[tokio::test]
async fn deleting_an_account_before_registration_is_rejected_as_not_registered() {
    fixture()
        .given_no_previous_events()
        .when_async(AccountCommand::Delete { at: at(9) })
        .await
        .then_expect_error(AccountError::NotRegistered);
}

#[tokio::test]
async fn deleting_an_account_twice_is_rejected_as_deleted() {
    fixture()
        .given(vec![registered(), deleted()])
        .when_async(AccountCommand::Delete { at: at(10) })
        .await
        .then_expect_error(AccountError::AccountDeleted);
}

// ---- State, kinds and stored form --------------------------------------------------------

#[test]
fn the_folded_state_exposes_the_account() {
    let mut account = Account::default();
    assert!(!account.is_registered());
    for event in [
        registered(),
        AccountEvent::AccountAuthenticated { at: at(3) },
        AccountEvent::RefreshTokenRevoked { jti: id(7) },
        deleted(),
    ] {
        account.apply(event);
    }
    assert_eq!(account.id(), Some(id(ALICE)));
    assert_eq!(account.email(), Some(&alice_email()));
    assert_eq!(account.name(), Some("Alice"));
    assert_eq!(account.password_hash(), Some("$argon2id$hash"));
    assert_eq!(account.role(), Some(Role::Customer));
    assert_eq!(account.registered_at(), Some(at(0)));
    assert_eq!(account.last_login_at(), Some(at(3)));
    assert!(account.is_token_revoked(id(7)));
    assert!(!account.is_token_revoked(id(8)));
    assert!(account.is_deleted());
    assert_eq!(account.deleted_at(), Some(at(9)));
    round_trip(&account);
}

#[test]
fn the_account_debug_output_hides_the_password_hash() {
    let mut account = Account::default();
    account.apply(registered());
    let debug = format!("{account:?}");
    assert!(!debug.contains("argon2id"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn account_errors_have_their_documented_kinds() {
    use AccountError::*;
    assert_eq!(NotRegistered.kind(), Rejection::NotFound);
    assert_eq!(AlreadyRegistered.kind(), Rejection::Conflict);
    assert_eq!(EmailTaken.kind(), Rejection::Conflict);
    assert_eq!(AccountDeleted.kind(), Rejection::Unprocessable);
    assert_eq!(
        InvalidName(NameError::Empty).kind(),
        Rejection::Unprocessable
    );
    assert_eq!(EmptyPasswordHash.kind(), Rejection::Unprocessable);
    assert!(EmailRegistryUnavailable("x".into()).is_infrastructure());
    assert!(!EmailTaken.is_infrastructure());
}

#[test]
fn roles_have_stable_lowercase_names() {
    assert_eq!(round_trip(&Role::Customer), json!("customer"));
    assert_eq!(round_trip(&Role::Seller), json!("seller"));
    assert_eq!(round_trip(&Role::Admin), json!("admin"));
    assert_eq!(Role::parse(" Seller "), Ok(Role::Seller));
    assert!(Role::parse("root").is_err());
    assert_eq!(Role::default(), Role::Customer);
}

#[test]
fn account_events_have_stable_stored_names_and_shapes() {
    assert_eq!(Account::TYPE, "account");
    let events = [
        (registered(), "AccountRegistered"),
        (
            AccountEvent::AccountAuthenticated { at: at(1) },
            "AccountAuthenticated",
        ),
        (
            AccountEvent::RefreshTokenRevoked { jti: id(7) },
            "RefreshTokenRevoked",
        ),
        (deleted(), "AccountDeleted"),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1");
        assert_eq!(round_trip(&event)["type"], json!(name));
    }
    assert_eq!(
        serde_json::to_value(registered()).unwrap(),
        json!({
            "type": "AccountRegistered",
            "data": {
                "account_id": "00000000-0000-0000-0000-000000000001",
                "email": "alice@example.com",
                "name": "Alice",
                "password_hash": "$argon2id$hash",
                "role": "customer",
                "registered_at": "2025-01-01T00:00:00Z"
            }
        })
    );
}
