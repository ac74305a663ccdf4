//! The follower record (aggregate `projection`): given / when / then.

use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::projection::{ProjectionCommand, ProjectionError, ProjectionEvent, ProjectionRecord};
use domain::Rejection;

type Fixture = TestFramework<ProjectionRecord>;

fn skip(position: i64, reason: &str) -> ProjectionCommand {
    ProjectionCommand::SkipDeadLetter {
        position,
        event_type: "ProductCreated".into(),
        aggregate_type: "product".into(),
        aggregate_id: "p1".into(),
        reason: reason.into(),
    }
}

fn skipped(position: i64, reason: &str) -> ProjectionEvent {
    ProjectionEvent::DeadLetterSkipped {
        position,
        event_type: "ProductCreated".into(),
        aggregate_type: "product".into(),
        aggregate_id: "p1".into(),
        reason: reason.into(),
    }
}

#[tokio::test]
async fn given_a_parked_event_when_skipped_with_a_reason_then_the_skip_is_recorded() {
    Fixture::with(())
        .given_no_previous_events()
        .when_async(skip(7, "  botched import "))
        .await
        .then_expect_events(vec![skipped(7, "botched import")]);
}

#[tokio::test]
async fn given_a_skipped_position_when_skipped_again_then_nothing_is_recorded() {
    Fixture::with(())
        .given(vec![skipped(7, "botched import")])
        .when_async(skip(7, "again"))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn given_no_reason_when_skipping_then_it_is_refused_as_unprocessable() {
    Fixture::with(())
        .given_no_previous_events()
        .when_async(skip(7, "   "))
        .await
        .then_expect_error(ProjectionError::ReasonRequired);
    assert_eq!(
        ProjectionError::ReasonRequired.kind(),
        Rejection::Unprocessable
    );
}

#[test]
fn given_the_stored_names_then_they_are_explicit_literals() {
    assert_eq!(ProjectionRecord::TYPE, "projection");
    assert_eq!(skipped(1, "r").event_type(), "DeadLetterSkipped");
    let json = serde_json::to_value(skipped(1, "r")).unwrap();
    assert_eq!(json["type"], "DeadLetterSkipped");
    assert_eq!(json["data"]["position"], 1);
    assert_eq!(
        domain::public::public_payload("projection", &json).unwrap(),
        json
    );
}
