//! Product aggregate: given / when / then.

mod common;

use common::{eur, id, qty, round_trip, usd};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::product::{Product, ProductCommand, ProductError, ProductEvent, ReservationStatus};
use domain::{NameError, Rejection};
use serde_json::json;

type Fixture = TestFramework<Product>;

const PRODUCT: u128 = 10;
const SELLER: u128 = 2;
const ORDER: u128 = 100;

fn fixture() -> Fixture {
    Fixture::with(())
}

fn create(name: &str, description: &str, price: i64, stock: u32) -> ProductCommand {
    ProductCommand::Create {
        product_id: id(PRODUCT),
        seller: id(SELLER),
        name: name.to_owned(),
        description: description.to_owned(),
        sku: None,
        price: eur(price),
        stock,
    }
}

fn created(stock: u32) -> ProductEvent {
    ProductEvent::ProductCreated {
        product_id: id(PRODUCT),
        seller: id(SELLER),
        name: "Mug".to_owned(),
        description: "A mug.".to_owned(),
        sku: domain::product::default_sku(id(PRODUCT)),
        price: eur(1390),
        stock,
    }
}

fn reserved(quantity: u32) -> ProductEvent {
    ProductEvent::StockReserved {
        order_id: id(ORDER),
        quantity: qty(quantity),
    }
}

fn reserve(quantity: u32) -> ProductCommand {
    ProductCommand::Reserve {
        order_id: id(ORDER),
        quantity: qty(quantity),
    }
}

fn release() -> ProductCommand {
    ProductCommand::Release {
        order_id: id(ORDER),
    }
}

fn commit() -> ProductCommand {
    ProductCommand::CommitReservation {
        order_id: id(ORDER),
    }
}

fn update(name: Option<&str>, description: Option<&str>, price: Option<i64>) -> ProductCommand {
    ProductCommand::Update {
        name: name.map(str::to_owned),
        description: description.map(str::to_owned),
        price: price.map(eur),
    }
}

// ---- Create ------------------------------------------------------------------------------

fn with_sku(sku: &str) -> ProductCommand {
    match create("Mug", "A mug.", 1390, 100) {
        ProductCommand::Create {
            product_id,
            seller,
            name,
            description,
            price,
            stock,
            ..
        } => ProductCommand::Create {
            product_id,
            seller,
            name,
            description,
            sku: Some(sku.to_owned()),
            price,
            stock,
        },
        other => other,
    }
}

#[tokio::test]
async fn given_a_sku_when_creating_a_product_then_it_is_recorded_as_given() {
    let mut expected = created(100);
    if let ProductEvent::ProductCreated { sku, .. } = &mut expected {
        *sku = "MUG-1.a_b".to_owned();
    }
    fixture()
        .given_no_previous_events()
        .when_async(with_sku("MUG-1.a_b"))
        .await
        .then_expect_events(vec![expected]);
}

#[tokio::test]
async fn given_no_sku_when_creating_a_product_then_it_gets_p_and_its_ids_hex_digits() {
    let mut product = Product::default();
    product.apply(created(1));
    assert_eq!(product.sku(), "P-0000000000000000000000000000000A");
}

#[tokio::test]
async fn given_an_empty_long_or_spaced_sku_when_creating_a_product_then_it_is_refused() {
    // An identifier is taken as given: surrounding blanks are refused, not trimmed, so that the
    // OpenAPI pattern and length are exactly the rule.
    let long = "X".repeat(41);
    let padded = format!(" {} ", "X".repeat(39));
    for sku in [
        "",
        "  ",
        "MUG 1",
        "MUG/1",
        " MUG-1",
        "MUG-1\n",
        long.as_str(),
        padded.as_str(),
    ] {
        fixture()
            .given_no_previous_events()
            .when_async(with_sku(sku))
            .await
            .then_expect_error(ProductError::InvalidSku);
    }
}

#[test]
fn given_a_v1_product_created_without_sku_when_upcast_then_it_decodes_with_the_default_sku() {
    let v1 = json!({"type": "ProductCreated", "data": {
        "product_id": id(PRODUCT), "seller": id(SELLER), "name": "Mug", "description": "A mug.",
        "price": {"amount": 1390, "currency": "EUR"}, "stock": 100}});
    assert!(serde_json::from_value::<ProductEvent>(v1.clone()).is_err());
    let v2 = domain::upcast::upcast("ProductCreated", "1", &v1).unwrap();
    let event: ProductEvent = serde_json::from_value(v2.into_owned()).unwrap();
    assert_eq!(event, created(100));
}

#[test]
fn given_a_v2_product_created_when_upcast_then_its_sku_is_kept() {
    let v2 = serde_json::to_value(created(1)).unwrap();
    let mut stored = v2.clone();
    stored["data"]["sku"] = json!("KEEP");
    let upcast = domain::upcast::upcast("ProductCreated", "2", &stored).unwrap();
    assert_eq!(upcast["data"]["sku"], json!("KEEP"));
    assert!(domain::upcast::upcast("ProductCreated", "3", &v2).is_err());
}

#[tokio::test]
async fn creating_a_product_records_it_trimmed() {
    fixture()
        .given_no_previous_events()
        .when_async(create(" Mug ", " A mug. ", 1390, 100))
        .await
        .then_expect_events(vec![created(100)]);
}

#[tokio::test]
async fn creating_a_product_without_stock_is_allowed() {
    fixture()
        .given_no_previous_events()
        .when_async(create("Mug", "A mug.", 1390, 0))
        .await
        .then_expect_events(vec![created(0)]);
}

#[tokio::test]
async fn creating_a_product_twice_is_rejected() {
    fixture()
        .given(vec![created(1)])
        .when_async(create("Mug", "A mug.", 1390, 1))
        .await
        .then_expect_error(ProductError::AlreadyCreated);
}

#[tokio::test]
async fn creating_a_product_with_an_empty_name_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(create(" ", "A mug.", 1390, 1))
        .await
        .then_expect_error(ProductError::InvalidName(NameError::Empty));
}

#[tokio::test]
async fn creating_a_product_with_a_description_over_2000_characters_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(create("Mug", &"d".repeat(2001), 1390, 1))
        .await
        .then_expect_error(ProductError::DescriptionTooLong {
            max: 2000,
            actual: 2001,
        });
}

#[tokio::test]
async fn given_a_description_with_a_nul_when_a_product_is_created_then_it_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(create("Mug", "A\u{0}mug", 1390, 1))
        .await
        .then_expect_error(ProductError::InvalidDescription(domain::TextError {
            code: 0,
            index: 1,
        }));
}

#[tokio::test]
async fn creating_a_product_with_a_zero_price_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(create("Mug", "A mug.", 0, 1))
        .await
        .then_expect_error(ProductError::NonPositivePrice);
}

// ---- Update ------------------------------------------------------------------------------

#[tokio::test]
async fn updating_a_product_records_the_changed_fields() {
    fixture()
        .given(vec![created(1)])
        .when_async(ProductCommand::Update {
            name: Some(" Big mug ".to_owned()),
            description: None,
            price: Some(usd(1500)),
        })
        .await
        .then_expect_events(vec![ProductEvent::ProductUpdated {
            name: Some("Big mug".to_owned()),
            description: None,
            price: Some(usd(1500)),
        }]);
}

#[tokio::test]
async fn updating_leaves_out_fields_equal_to_the_current_values() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(Some("Mug"), Some("A larger mug."), Some(1390)))
        .await
        .then_expect_events(vec![ProductEvent::ProductUpdated {
            name: None,
            description: Some("A larger mug.".to_owned()),
            price: None,
        }]);
}

#[tokio::test]
async fn updating_with_only_current_values_records_nothing() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(Some("Mug"), None, Some(1390)))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn updating_with_no_field_is_rejected_as_nothing_to_update() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(None, None, None))
        .await
        .then_expect_error(ProductError::NothingToUpdate);
}

#[tokio::test]
async fn updating_a_product_that_does_not_exist_is_rejected_as_not_found() {
    fixture()
        .given_no_previous_events()
        .when_async(update(Some("Mug"), None, None))
        .await
        .then_expect_error(ProductError::NotFound);
}

#[tokio::test]
async fn updating_to_an_invalid_name_is_rejected() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(Some("a\u{7}b"), None, None))
        .await
        .then_expect_error(ProductError::InvalidName(NameError::ControlCharacter));
}

#[tokio::test]
async fn updating_to_a_too_long_description_is_rejected() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(None, Some(&"d".repeat(2001)), None))
        .await
        .then_expect_error(ProductError::DescriptionTooLong {
            max: 2000,
            actual: 2001,
        });
}

#[tokio::test]
async fn updating_to_a_negative_price_is_rejected() {
    fixture()
        .given(vec![created(1)])
        .when_async(update(None, None, Some(-1)))
        .await
        .then_expect_error(ProductError::NonPositivePrice);
}

// ---- Restock -----------------------------------------------------------------------------

#[tokio::test]
async fn restocking_adds_stock() {
    fixture()
        .given(vec![created(1)])
        .when_async(ProductCommand::Restock { quantity: qty(5) })
        .await
        .then_expect_events(vec![ProductEvent::StockAdded { quantity: qty(5) }]);
}

#[tokio::test]
async fn restocking_a_product_that_does_not_exist_is_rejected_as_not_found() {
    fixture()
        .given_no_previous_events()
        .when_async(ProductCommand::Restock { quantity: qty(5) })
        .await
        .then_expect_error(ProductError::NotFound);
}

#[tokio::test]
async fn restocking_beyond_the_stock_range_is_rejected() {
    fixture()
        .given(vec![created(u32::MAX - 1)])
        .when_async(ProductCommand::Restock { quantity: qty(2) })
        .await
        .then_expect_error(ProductError::StockOverflow);
}

// ---- Reserve -----------------------------------------------------------------------------

#[tokio::test]
async fn reserving_available_stock_records_the_reservation() {
    fixture()
        .given(vec![created(3)])
        .when_async(reserve(3))
        .await
        .then_expect_events(vec![reserved(3)]);
}

#[tokio::test]
async fn reserving_more_than_is_available_records_a_rejection() {
    fixture()
        .given(vec![
            created(5),
            ProductEvent::StockReserved {
                order_id: id(101),
                quantity: qty(3),
            },
        ])
        .when_async(reserve(3))
        .await
        .then_expect_events(vec![ProductEvent::StockReservationRejected {
            order_id: id(ORDER),
            quantity: qty(3),
            available: 2,
        }]);
}

#[tokio::test]
async fn reserving_a_product_that_does_not_exist_is_rejected_as_not_found() {
    fixture()
        .given_no_previous_events()
        .when_async(reserve(1))
        .await
        .then_expect_error(ProductError::NotFound);
}

#[tokio::test]
async fn reserving_twice_for_one_order_is_rejected() {
    let already = ProductError::AlreadyReserved {
        order_id: id(ORDER),
    };
    let earlier = [
        vec![reserved(1)],
        vec![ProductEvent::StockReservationRejected {
            order_id: id(ORDER),
            quantity: qty(9),
            available: 5,
        }],
        vec![
            reserved(1),
            ProductEvent::ReservationReleased {
                order_id: id(ORDER),
                quantity: qty(1),
            },
        ],
        vec![
            reserved(1),
            ProductEvent::ReservationCommitted {
                order_id: id(ORDER),
                quantity: qty(1),
            },
        ],
    ];
    for history in earlier {
        let mut given = vec![created(5)];
        given.extend(history);
        fixture()
            .given(given)
            .when_async(reserve(1))
            .await
            .then_expect_error(already.clone());
    }
}

// ---- Release -----------------------------------------------------------------------------

#[tokio::test]
async fn releasing_an_open_reservation_returns_its_stock() {
    fixture()
        .given(vec![created(5), reserved(2)])
        .when_async(release())
        .await
        .then_expect_events(vec![ProductEvent::ReservationReleased {
            order_id: id(ORDER),
            quantity: qty(2),
        }]);
}

#[tokio::test]
async fn releasing_on_a_product_that_does_not_exist_is_rejected_as_not_found() {
    fixture()
        .given_no_previous_events()
        .when_async(release())
        .await
        .then_expect_error(ProductError::NotFound);
}

#[tokio::test]
async fn releasing_without_a_reservation_is_rejected() {
    fixture()
        .given(vec![created(5)])
        .when_async(release())
        .await
        .then_expect_error(ProductError::NoReservation {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn releasing_a_rejected_reservation_is_rejected_as_no_reservation() {
    fixture()
        .given(vec![
            created(0),
            ProductEvent::StockReservationRejected {
                order_id: id(ORDER),
                quantity: qty(1),
                available: 0,
            },
        ])
        .when_async(release())
        .await
        .then_expect_error(ProductError::NoReservation {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn releasing_a_released_reservation_is_rejected_as_closed() {
    fixture()
        .given(vec![
            created(5),
            reserved(2),
            ProductEvent::ReservationReleased {
                order_id: id(ORDER),
                quantity: qty(2),
            },
        ])
        .when_async(release())
        .await
        .then_expect_error(ProductError::ReservationClosed {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn releasing_a_committed_reservation_is_rejected_as_closed() {
    fixture()
        .given(vec![
            created(5),
            reserved(2),
            ProductEvent::ReservationCommitted {
                order_id: id(ORDER),
                quantity: qty(2),
            },
        ])
        .when_async(release())
        .await
        .then_expect_error(ProductError::ReservationClosed {
            order_id: id(ORDER),
        });
}

// ---- CommitReservation -------------------------------------------------------------------

#[tokio::test]
async fn committing_an_open_reservation_ships_it() {
    fixture()
        .given(vec![created(5), reserved(2)])
        .when_async(commit())
        .await
        .then_expect_events(vec![ProductEvent::ReservationCommitted {
            order_id: id(ORDER),
            quantity: qty(2),
        }]);
}

#[tokio::test]
async fn committing_on_a_product_that_does_not_exist_is_rejected_as_not_found() {
    fixture()
        .given_no_previous_events()
        .when_async(commit())
        .await
        .then_expect_error(ProductError::NotFound);
}

#[tokio::test]
async fn committing_without_a_reservation_is_rejected() {
    fixture()
        .given(vec![created(5)])
        .when_async(commit())
        .await
        .then_expect_error(ProductError::NoReservation {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn committing_a_released_reservation_is_rejected_as_closed() {
    fixture()
        .given(vec![
            created(5),
            reserved(2),
            ProductEvent::ReservationReleased {
                order_id: id(ORDER),
                quantity: qty(2),
            },
        ])
        .when_async(commit())
        .await
        .then_expect_error(ProductError::ReservationClosed {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn committing_twice_is_rejected_as_closed() {
    fixture()
        .given(vec![
            created(5),
            reserved(2),
            ProductEvent::ReservationCommitted {
                order_id: id(ORDER),
                quantity: qty(2),
            },
        ])
        .when_async(commit())
        .await
        .then_expect_error(ProductError::ReservationClosed {
            order_id: id(ORDER),
        });
}

// ---- State, kinds and stored form --------------------------------------------------------

#[test]
fn stock_figures_follow_reservations() {
    let mut product = Product::default();
    assert!(!product.is_created());
    product.apply(created(10));
    product.apply(reserved(4));
    assert_eq!(
        (
            product.stock_on_hand(),
            product.stock_reserved(),
            product.stock_available()
        ),
        (10, 4, 6)
    );
    product.apply(ProductEvent::ReservationCommitted {
        order_id: id(ORDER),
        quantity: qty(4),
    });
    assert_eq!(
        (
            product.stock_on_hand(),
            product.stock_reserved(),
            product.stock_available()
        ),
        (6, 0, 6)
    );
    assert_eq!(
        product.reservation(id(ORDER)).map(|r| r.status),
        Some(ReservationStatus::Committed)
    );
    product.apply(ProductEvent::ProductUpdated {
        name: Some("Cup".to_owned()),
        description: None,
        price: Some(eur(990)),
    });
    assert_eq!(product.name(), "Cup");
    assert_eq!(product.description(), "A mug.");
    assert_eq!(product.price(), Some(eur(990)));
    assert_eq!(product.seller(), Some(id(SELLER)));
    assert_eq!(product.id(), Some(id(PRODUCT)));
    round_trip(&product);
}

#[test]
fn product_errors_have_their_documented_kinds() {
    use ProductError::*;
    let order_id = id(ORDER);
    assert_eq!(NotFound.kind(), Rejection::NotFound);
    assert_eq!(AlreadyCreated.kind(), Rejection::Conflict);
    assert_eq!(AlreadyReserved { order_id }.kind(), Rejection::Conflict);
    assert_eq!(ReservationClosed { order_id }.kind(), Rejection::Conflict);
    for unprocessable in [
        InvalidName(NameError::Empty),
        DescriptionTooLong { max: 1, actual: 2 },
        InvalidDescription(domain::TextError { code: 0, index: 0 }),
        NonPositivePrice,
        NothingToUpdate,
        StockOverflow,
        NoReservation { order_id },
    ] {
        assert_eq!(unprocessable.kind(), Rejection::Unprocessable);
    }
}

#[test]
fn product_events_have_stable_stored_names_and_shapes() {
    assert_eq!(Product::TYPE, "product");
    let rejected = ProductEvent::StockReservationRejected {
        order_id: id(ORDER),
        quantity: qty(3),
        available: 2,
    };
    let events = [
        (created(1), "ProductCreated"),
        (
            ProductEvent::ProductUpdated {
                name: None,
                description: None,
                price: Some(eur(1)),
            },
            "ProductUpdated",
        ),
        (ProductEvent::StockAdded { quantity: qty(1) }, "StockAdded"),
        (reserved(1), "StockReserved"),
        (rejected.clone(), "StockReservationRejected"),
        (
            ProductEvent::ReservationReleased {
                order_id: id(ORDER),
                quantity: qty(1),
            },
            "ReservationReleased",
        ),
        (
            ProductEvent::ReservationCommitted {
                order_id: id(ORDER),
                quantity: qty(1),
            },
            "ReservationCommitted",
        ),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        // ProductCreated gained its SKU in v2 (domain::upcast); the others are at v1.
        let version = if name == "ProductCreated" { "2" } else { "1" };
        assert_eq!(event.event_version(), version);
        assert_eq!(round_trip(&event)["type"], json!(name));
    }
    assert_eq!(
        serde_json::to_value(rejected).unwrap(),
        json!({
            "type": "StockReservationRejected",
            "data": {
                "order_id": "00000000-0000-0000-0000-000000000064",
                "quantity": 3,
                "available": 2
            }
        })
    );
}
