//! The public JSON view of every event type of the domain: which fields it hides, and that it
//! is the view `public_payload` answers for a stored payload. The samples are exhaustive: a new
//! event variant does not compile until it is listed in `hidden`, and the test fails until a
//! sample of it is added.

mod common;

use common::{at, eur, id, policy, qty};
use domain::account::{AccountEvent, Role};
use domain::email::Email;
use domain::order::{OrderEvent, OrderLine, OrderStatus};
use domain::policy_set::PolicySetEvent;
use domain::product::ProductEvent;
use domain::public::public_payload;
use domain::wallet::{DeclineReason, WalletEvent};
use domain::Currency;
use serde_json::{json, Value};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const JTI: u128 = 0x5ec2_e7ee;
const FAMILY: u128 = 0xfa31_17ee;

/// One event of any aggregate, with its aggregate type.
#[derive(Debug, Clone)]
enum Any {
    Account(AccountEvent),
    Wallet(WalletEvent),
    Product(ProductEvent),
    Order(OrderEvent),
    Policy(PolicySetEvent),
}

impl Any {
    fn aggregate_type(&self) -> &'static str {
        match self {
            Any::Account(_) => "account",
            Any::Wallet(_) => "wallet",
            Any::Product(_) => "product",
            Any::Order(_) => "order",
            Any::Policy(_) => "policy_set",
        }
    }

    fn stored(&self) -> Value {
        match self {
            Any::Account(e) => serde_json::to_value(e),
            Any::Wallet(e) => serde_json::to_value(e),
            Any::Product(e) => serde_json::to_value(e),
            Any::Order(e) => serde_json::to_value(e),
            Any::Policy(e) => serde_json::to_value(e),
        }
        .expect("an event serializes")
    }

    fn public(&self) -> Value {
        match self {
            Any::Account(e) => e.public_json(),
            Any::Wallet(e) => e.public_json(),
            Any::Product(e) => e.public_json(),
            Any::Order(e) => e.public_json(),
            Any::Policy(e) => e.public_json(),
        }
    }
}

/// Which data fields each event type's public view hides, and the variant's index among all
/// variants. Exhaustive matches without wildcards: a new variant must be listed here.
fn hidden(event: &Any) -> (usize, &'static [&'static str]) {
    match event {
        Any::Account(e) => match e {
            AccountEvent::AccountRegistered { .. } => (0, &["password_hash"]),
            AccountEvent::AccountAuthenticated { .. } => (1, &[]),
            AccountEvent::RefreshTokenRevoked { .. } => (2, &["jti"]),
            AccountEvent::RefreshTokenFamilyRevoked { .. } => (3, &["family"]),
            AccountEvent::AccountDeleted { .. } => (4, &[]),
            AccountEvent::AccountErased { .. } => (25, &[]),
        },
        Any::Wallet(e) => match e {
            WalletEvent::WalletOpened { .. } => (5, &[]),
            WalletEvent::FundsDeposited { .. } => (6, &[]),
            WalletEvent::PaymentCaptured { .. } => (7, &[]),
            WalletEvent::PaymentDeclined { .. } => (8, &[]),
            WalletEvent::PaymentRefunded { .. } => (9, &[]),
        },
        Any::Product(e) => match e {
            ProductEvent::ProductCreated { .. } => (10, &[]),
            ProductEvent::ProductUpdated { .. } => (11, &[]),
            ProductEvent::StockAdded { .. } => (12, &[]),
            ProductEvent::StockReserved { .. } => (13, &[]),
            ProductEvent::StockReservationRejected { .. } => (14, &[]),
            ProductEvent::ReservationReleased { .. } => (15, &[]),
            ProductEvent::ReservationCommitted { .. } => (16, &[]),
        },
        Any::Order(e) => match e {
            OrderEvent::OrderPlaced { .. } => (17, &[]),
            OrderEvent::OrderAwaitingPayment { .. } => (18, &[]),
            OrderEvent::OrderApproved => (19, &[]),
            OrderEvent::OrderRejected { .. } => (20, &[]),
            OrderEvent::OrderCanceled { .. } => (21, &[]),
        },
        Any::Policy(e) => match e {
            PolicySetEvent::PolicyGranted { .. } => (22, &[]),
            PolicySetEvent::PolicyRevoked { .. } => (23, &[]),
            PolicySetEvent::AllPoliciesRevoked => (24, &[]),
        },
    }
}

const VARIANTS: usize = 26;

/// One event of every variant.
fn samples() -> Vec<Any> {
    let line = OrderLine {
        product_id: id(9),
        quantity: qty(2),
        unit_price: eur(1390),
    };
    vec![
        Any::Account(AccountEvent::AccountRegistered {
            account_id: id(1),
            email: Email::parse("ann@example.com").unwrap(),
            name: "Ann".into(),
            password_hash: HASH.into(),
            role: Role::Customer,
            registered_at: at(0),
        }),
        Any::Account(AccountEvent::AccountAuthenticated { at: at(1) }),
        Any::Account(AccountEvent::RefreshTokenRevoked { jti: id(JTI) }),
        Any::Account(AccountEvent::RefreshTokenFamilyRevoked { family: id(FAMILY) }),
        Any::Account(AccountEvent::AccountDeleted { at: at(2) }),
        Any::Account(AccountEvent::AccountErased { at: at(2) }),
        Any::Wallet(WalletEvent::WalletOpened {
            account_id: id(1),
            currency: Currency::EUR,
        }),
        Any::Wallet(WalletEvent::FundsDeposited { amount: eur(100) }),
        Any::Wallet(WalletEvent::PaymentCaptured {
            order_id: id(5),
            amount: eur(2780),
        }),
        Any::Wallet(WalletEvent::PaymentDeclined {
            order_id: id(5),
            amount: eur(2780),
            reason: DeclineReason::InsufficientFunds,
        }),
        Any::Wallet(WalletEvent::PaymentRefunded {
            order_id: id(5),
            amount: eur(2780),
        }),
        Any::Product(ProductEvent::ProductCreated {
            product_id: id(9),
            seller: id(2),
            name: "Teapot".into(),
            description: "Blue".into(),
            sku: "TEA-1".into(),
            price: eur(1390),
            stock: 10,
        }),
        Any::Product(ProductEvent::ProductUpdated {
            name: Some("Pot".into()),
            description: None,
            price: Some(eur(1490)),
        }),
        Any::Product(ProductEvent::StockAdded { quantity: qty(5) }),
        Any::Product(ProductEvent::StockReserved {
            order_id: id(5),
            quantity: qty(2),
        }),
        Any::Product(ProductEvent::StockReservationRejected {
            order_id: id(5),
            quantity: qty(20),
            available: 10,
        }),
        Any::Product(ProductEvent::ReservationReleased {
            order_id: id(5),
            quantity: qty(2),
        }),
        Any::Product(ProductEvent::ReservationCommitted {
            order_id: id(5),
            quantity: qty(2),
        }),
        Any::Order(OrderEvent::OrderPlaced {
            order_id: id(5),
            account_id: id(1),
            items: vec![line],
            currency: Currency::EUR,
            total: eur(2780),
            placed_at: at(3),
        }),
        Any::Order(OrderEvent::OrderAwaitingPayment { amount: eur(2780) }),
        Any::Order(OrderEvent::OrderApproved),
        Any::Order(OrderEvent::OrderRejected {
            reason: "out of stock".into(),
        }),
        Any::Order(OrderEvent::OrderCanceled {
            reason: Some("changed my mind".into()),
            previous_status: OrderStatus::AwaitingPayment,
        }),
        Any::Policy(PolicySetEvent::PolicyGranted {
            policy: policy("1:get:orders:5"),
        }),
        Any::Policy(PolicySetEvent::PolicyRevoked {
            policy: policy("1:get:orders:5"),
        }),
        Any::Policy(PolicySetEvent::AllPoliciesRevoked),
    ]
}

fn data_keys(value: &Value) -> Vec<String> {
    value
        .get("data")
        .and_then(Value::as_object)
        .map(|data| data.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn given_one_event_of_every_type_when_viewed_publicly_then_exactly_the_listed_fields_are_hidden() {
    let samples = samples();
    let mut seen = [false; VARIANTS];
    for event in &samples {
        let (index, hidden) = hidden(event);
        seen[index] = true;
        let stored = event.stored();
        let public = event.public();
        assert_eq!(public["type"], stored["type"], "{event:?}");
        let removed: Vec<String> = data_keys(&stored)
            .into_iter()
            .filter(|key| !data_keys(&public).contains(key))
            .collect();
        assert_eq!(removed, hidden, "hidden fields of {event:?}");
        // Every other field is shown as stored.
        let mut expected = stored.clone();
        if let Some(data) = expected.get_mut("data").and_then(Value::as_object_mut) {
            for key in hidden {
                data.remove(*key);
            }
        }
        assert_eq!(public, expected, "{event:?}");
        // The one dispatch from a stored payload gives the same view.
        assert_eq!(
            public_payload(event.aggregate_type(), &stored).expect("decodes"),
            public,
            "{event:?}"
        );
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|i| !seen[*i]).collect();
    assert!(missing.is_empty(), "no sample of variants {missing:?}");
}

#[test]
fn given_every_event_when_viewed_publicly_then_no_password_hash_or_token_or_family_id_appears_anywhere(
) {
    let jti = id(JTI).to_string();
    let family = id(FAMILY).to_string();
    for event in samples() {
        let text = event.public().to_string();
        assert!(!text.contains("argon2"), "{text}");
        assert!(!text.contains(HASH), "{text}");
        assert!(!text.contains(&jti), "{text}");
        assert!(!text.contains(&family), "{text}");
    }
}

#[test]
fn given_a_payload_that_does_not_decode_when_viewed_publicly_then_it_is_an_error_not_shown_raw() {
    let secretive = json!({"type": "AccountRegistered", "data": {"password_hash": HASH}});
    assert!(public_payload("account", &secretive).is_err());
    assert!(public_payload("account", &json!({"type": "Unheard", "data": {}})).is_err());
    assert!(public_payload("basket", &json!({"type": "OrderApproved"})).is_err());
    // An event of another aggregate type is not read as this one.
    let wallet = serde_json::to_value(WalletEvent::FundsDeposited { amount: eur(1) }).unwrap();
    assert!(public_payload("order", &wallet).is_err());
}
