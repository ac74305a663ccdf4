//! Parsing and serialization of the value types.

mod common;

use common::round_trip;
use domain::{
    Currency, CurrencyError, Email, EmailError, Money, MoneyError, Name, NameError, Policy,
    PolicyError, PolicyPart, Quantity, QuantityError, Rejection,
};
use serde_json::json;

// ---- Email -------------------------------------------------------------------------------

#[test]
fn an_email_is_trimmed_and_lowercased() {
    let email = Email::parse("  Alice.Smith+shop@Example.COM ").unwrap();
    assert_eq!(email.as_str(), "alice.smith+shop@example.com");
    assert_eq!(email.domain(), "example.com");
}

#[test]
fn an_empty_email_is_rejected() {
    assert_eq!(Email::parse("   "), Err(EmailError::Empty));
}

#[test]
fn an_email_longer_than_254_characters_is_rejected() {
    let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
    assert_eq!(long.len(), 259);
    assert_eq!(
        Email::parse(&long),
        Err(EmailError::TooLong {
            max: 254,
            actual: 259
        })
    );
}

#[test]
fn an_email_of_exactly_254_characters_is_accepted() {
    let domain = format!(
        "{}.{}.{}.com",
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    let email = format!("{}@{}", "a".repeat(64), domain);
    assert_eq!(email.len(), 254);
    assert!(Email::parse(&email).is_ok());
}

#[test]
fn an_email_without_at_is_rejected() {
    assert_eq!(
        Email::parse("alice.example.com"),
        Err(EmailError::MissingAt)
    );
}

#[test]
fn an_email_with_two_ats_is_rejected() {
    assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::MultipleAt));
}

#[test]
fn an_email_with_a_bad_local_part_is_rejected() {
    for bad in [
        "@example.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "al ice@example.com",
        "al(ice@example.com",
        "älice@example.com",
        &format!("{}@example.com", "a".repeat(65)),
    ] {
        assert_eq!(
            Email::parse(bad),
            Err(EmailError::InvalidLocalPart),
            "{bad}"
        );
    }
}

#[test]
fn an_email_with_a_bad_domain_is_rejected() {
    for bad in [
        "alice@",
        "alice@localhost",
        "alice@example..com",
        "alice@.example.com",
        "alice@example.com.",
        "alice@-example.com",
        "alice@example-.com",
        "alice@exa_mple.com",
        "alice@example.c",
        "alice@exa mple.com",
    ] {
        assert_eq!(Email::parse(bad), Err(EmailError::InvalidDomain), "{bad}");
    }
}

#[test]
fn an_email_serializes_as_its_string_and_is_revalidated_when_read() {
    let email = Email::parse("alice@example.com").unwrap();
    assert_eq!(round_trip(&email), json!("alice@example.com"));
    assert!(serde_json::from_value::<Email>(json!("not an email")).is_err());
    let read: Email = serde_json::from_value(json!(" Bob@Example.com")).unwrap();
    assert_eq!(read.as_str(), "bob@example.com");
}

// ---- Currency and Money ------------------------------------------------------------------

#[test]
fn a_currency_code_parses_in_any_case() {
    assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
    assert_eq!(Currency::parse(" usd "), Ok(Currency::USD));
    assert_eq!(Currency::EUR.code(), "EUR");
    assert_eq!(Currency::EUR.exponent(), 2);
    assert_eq!(Currency::JPY.exponent(), 0);
}

#[test]
fn a_currency_code_of_the_wrong_length_is_rejected() {
    assert_eq!(
        Currency::parse("EURO"),
        Err(CurrencyError::WrongLength { actual: 4 })
    );
    assert_eq!(
        Currency::parse(""),
        Err(CurrencyError::WrongLength { actual: 0 })
    );
}

#[test]
fn a_currency_code_with_non_letters_is_rejected() {
    assert_eq!(Currency::parse("E1R"), Err(CurrencyError::NotLetters));
}

#[test]
fn an_unknown_currency_code_is_rejected() {
    assert_eq!(
        Currency::parse("xyz"),
        Err(CurrencyError::Unknown {
            code: "XYZ".to_owned()
        })
    );
}

#[test]
fn a_currency_serializes_as_its_code() {
    assert_eq!(round_trip(&Currency::GBP), json!("GBP"));
    assert!(serde_json::from_value::<Currency>(json!("ZZZ")).is_err());
}

#[test]
fn money_serializes_as_amount_and_currency_code() {
    let money = Money::new(1390, Currency::EUR);
    assert_eq!(
        round_trip(&money),
        json!({"amount": 1390, "currency": "EUR"})
    );
    assert!(serde_json::from_value::<Money>(json!({"amount": 1, "currency": "EU"})).is_err());
    assert!(serde_json::from_value::<Money>(json!({"amount": 1.5, "currency": "EUR"})).is_err());
}

#[test]
fn money_parses_from_its_wire_parts() {
    assert_eq!(
        Money::parse(10_000, "eur"),
        Ok(Money::new(10_000, Currency::EUR))
    );
    assert_eq!(
        Money::parse(1, "??"),
        Err(CurrencyError::WrongLength { actual: 2 })
    );
}

#[test]
fn money_adds_and_subtracts_within_one_currency() {
    let a = Money::new(1_000, Currency::EUR);
    let b = Money::new(250, Currency::EUR);
    assert_eq!(a.checked_add(&b), Ok(Money::new(1_250, Currency::EUR)));
    assert_eq!(a.checked_sub(&b), Ok(Money::new(750, Currency::EUR)));
    assert_eq!(b.checked_mul(3), Ok(Money::new(750, Currency::EUR)));
    assert!(a.is_positive());
    assert!(!Money::zero(Currency::EUR).is_positive());
}

#[test]
fn money_in_different_currencies_does_not_add() {
    assert_eq!(
        Money::new(1, Currency::EUR).checked_add(&Money::new(1, Currency::USD)),
        Err(MoneyError::CurrencyMismatch {
            left: Currency::EUR,
            right: Currency::USD
        })
    );
}

#[test]
fn money_arithmetic_overflow_is_an_error_not_a_wrap() {
    let max = Money::new(i64::MAX, Currency::EUR);
    let one = Money::new(1, Currency::EUR);
    assert_eq!(max.checked_add(&one), Err(MoneyError::Overflow));
    assert_eq!(
        Money::new(i64::MIN, Currency::EUR).checked_sub(&one),
        Err(MoneyError::Overflow)
    );
    assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
}

#[test]
fn money_displays_in_major_units() {
    assert_eq!(Money::new(1390, Currency::EUR).to_string(), "13.90 EUR");
    assert_eq!(Money::new(-5, Currency::EUR).to_string(), "-0.05 EUR");
    assert_eq!(Money::new(500, Currency::JPY).to_string(), "500 JPY");
}

// ---- Quantity ----------------------------------------------------------------------------

#[test]
fn a_quantity_between_one_and_a_million_is_accepted() {
    assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
    assert_eq!(Quantity::new(1_000_000).map(Quantity::get), Ok(1_000_000));
}

#[test]
fn a_zero_quantity_is_rejected() {
    assert_eq!(Quantity::new(0), Err(QuantityError::Zero));
}

#[test]
fn a_quantity_above_a_million_is_rejected() {
    assert_eq!(
        Quantity::new(1_000_001),
        Err(QuantityError::TooLarge { max: 1_000_000 })
    );
    assert_eq!(
        Quantity::try_from(i64::MAX),
        Err(QuantityError::TooLarge { max: 1_000_000 })
    );
}

#[test]
fn a_negative_quantity_is_rejected() {
    assert_eq!(Quantity::try_from(-1_i64), Err(QuantityError::Negative));
}

#[test]
fn a_quantity_serializes_as_a_number_and_is_revalidated_when_read() {
    assert_eq!(round_trip(&Quantity::new(5).unwrap()), json!(5));
    assert!(serde_json::from_value::<Quantity>(json!(0)).is_err());
    assert!(serde_json::from_value::<Quantity>(json!(-3)).is_err());
    assert!(serde_json::from_value::<Quantity>(json!(2_000_000)).is_err());
}

// ---- Name --------------------------------------------------------------------------------

#[test]
fn a_name_is_trimmed() {
    assert_eq!(
        Name::parse("  Ada Lovelace ").unwrap().as_str(),
        "Ada Lovelace"
    );
}

#[test]
fn an_empty_name_is_rejected() {
    assert_eq!(Name::parse(" \t "), Err(NameError::Empty));
}

#[test]
fn a_name_longer_than_200_characters_is_rejected() {
    assert!(Name::parse(&"é".repeat(200)).is_ok());
    assert_eq!(
        Name::parse(&"é".repeat(201)),
        Err(NameError::TooLong {
            max: 200,
            actual: 201
        })
    );
}

#[test]
fn a_name_with_a_control_character_is_rejected() {
    assert_eq!(
        Name::parse("Ada\nLovelace"),
        Err(NameError::ControlCharacter)
    );
}

#[test]
fn a_name_serializes_as_its_string() {
    assert_eq!(round_trip(&Name::parse("Ada").unwrap()), json!("Ada"));
    assert!(serde_json::from_value::<Name>(json!("")).is_err());
}

// ---- Policy ------------------------------------------------------------------------------

#[test]
fn a_policy_parses_its_four_parts() {
    let p = Policy::parse("10:get:orders:15").unwrap();
    assert_eq!(
        (p.subject(), p.action(), p.resource_type(), p.resource_id()),
        ("10", "get", "orders", "15")
    );
    assert_eq!(p.to_string(), "10:get:orders:15");
    assert!(!p.is_admin());
}

#[test]
fn a_policy_with_wildcards_parses() {
    assert!(Policy::parse("10:*:*:*").unwrap().is_admin());
    assert_eq!(Policy::admin("10").unwrap().to_string(), "10:*:*:*");
    assert!(Policy::parse("10:get:products:*").is_ok());
}

#[test]
fn given_a_wildcard_subject_when_a_policy_is_parsed_then_it_is_refused() {
    for input in ["*:get:products:*", "*:*:*:*", " *:put:orders:1 "] {
        assert_eq!(Policy::parse(input), Err(PolicyError::WildcardSubject));
    }
    assert_eq!(
        Policy::new("*", "get", "orders", "1"),
        Err(PolicyError::WildcardSubject)
    );
    assert!(Policy::admin("*").is_err());
    assert!(serde_json::from_str::<Policy>(r#""*:get:orders:*""#).is_err());
}

#[test]
fn a_policy_with_the_wrong_number_of_parts_is_rejected() {
    assert_eq!(
        Policy::parse("10:get:orders"),
        Err(PolicyError::WrongPartCount { found: 3 })
    );
    assert_eq!(
        Policy::parse("10:get:orders:15:x"),
        Err(PolicyError::WrongPartCount { found: 5 })
    );
}

#[test]
fn a_policy_with_an_empty_part_is_rejected() {
    assert_eq!(
        Policy::parse("10::orders:15"),
        Err(PolicyError::EmptyPart {
            part: PolicyPart::Action
        })
    );
    assert_eq!(
        Policy::parse(":get:orders:15"),
        Err(PolicyError::EmptyPart {
            part: PolicyPart::Subject
        })
    );
}

#[test]
fn a_policy_part_longer_than_100_characters_is_rejected() {
    let long = "x".repeat(101);
    assert!(Policy::parse(&format!("10:get:{}:1", "x".repeat(100))).is_ok());
    assert_eq!(
        Policy::parse(&format!("10:get:{long}:1")),
        Err(PolicyError::PartTooLong {
            part: PolicyPart::ResourceType,
            max: 100
        })
    );
}

#[test]
fn a_policy_part_with_whitespace_or_colon_is_rejected() {
    assert_eq!(
        Policy::parse("10:get:orders:1 5"),
        Err(PolicyError::InvalidCharacter {
            part: PolicyPart::ResourceId
        })
    );
    assert_eq!(
        Policy::new("10", "get", "ord:ers", "15"),
        Err(PolicyError::InvalidCharacter {
            part: PolicyPart::ResourceType
        })
    );
}

#[test]
fn a_policy_part_mixing_wildcard_and_name_is_rejected() {
    assert_eq!(
        Policy::parse("10:get:orders:1*"),
        Err(PolicyError::PartialWildcard {
            part: PolicyPart::ResourceId
        })
    );
}

#[test]
fn a_policy_serializes_as_its_string_and_is_revalidated_when_read() {
    assert_eq!(
        round_trip(&Policy::parse("10:get:orders:15").unwrap()),
        json!("10:get:orders:15")
    );
    assert!(serde_json::from_value::<Policy>(json!("10:get")).is_err());
}

#[test]
fn a_policy_allows_exactly_what_it_names() {
    let p = Policy::parse("10:get:orders:15").unwrap();
    assert!(p.allows("10", "get", "orders", "15"));
    assert!(!p.allows("11", "get", "orders", "15"));
    assert!(!p.allows("10", "put", "orders", "15"));
    assert!(!p.allows("10", "get", "products", "15"));
    assert!(!p.allows("10", "get", "orders", "16"));
}

#[test]
fn a_wildcard_in_a_policy_matches_anything_in_its_position() {
    let p = Policy::parse("10:*:orders:*").unwrap();
    assert!(p.allows("10", "get", "orders", "15"));
    assert!(p.allows("10", "put", "orders", "99"));
    assert!(!p.allows("10", "get", "accounts", "15"));
    assert!(!p.allows("11", "get", "orders", "15"));
}

#[test]
fn a_wildcard_in_the_request_is_not_a_wildcard() {
    let p = Policy::parse("10:get:orders:15").unwrap();
    assert!(!p.allows("10", "*", "orders", "15"));
    assert!(!p.allows("*", "get", "orders", "15"));
}

#[test]
fn an_admin_policy_allows_everything_for_its_subject_only() {
    let admin = Policy::admin("1").unwrap();
    assert!(admin.allows("1", "delete", "accounts", "42"));
    assert!(!admin.allows("2", "delete", "accounts", "42"));
}

// ---- Rejection ---------------------------------------------------------------------------

#[test]
fn rejection_kinds_have_stable_names() {
    assert_eq!(Rejection::NotFound.to_string(), "not_found");
    assert_eq!(round_trip(&Rejection::Conflict), json!("conflict"));
    assert_eq!(Rejection::Unprocessable.as_str(), "unprocessable");
}
