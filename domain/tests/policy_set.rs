//! PolicySet aggregate: given / when / then.

mod common;

use common::{policy, round_trip};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::policy_set::{PolicySet, PolicySetCommand, PolicySetEvent};
use serde_json::json;

type Fixture = TestFramework<PolicySet>;

fn fixture() -> Fixture {
    Fixture::with(())
}

fn granted(p: &str) -> PolicySetEvent {
    PolicySetEvent::PolicyGranted { policy: policy(p) }
}

#[tokio::test]
async fn granting_a_policy_records_it() {
    fixture()
        .given_no_previous_events()
        .when_async(PolicySetCommand::Grant {
            policy: policy("10:get:orders:15"),
        })
        .await
        .then_expect_events(vec![granted("10:get:orders:15")]);
}

#[tokio::test]
async fn granting_a_policy_already_held_records_nothing() {
    fixture()
        .given(vec![granted("10:get:orders:15")])
        .when_async(PolicySetCommand::Grant {
            policy: policy("10:get:orders:15"),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn revoking_a_held_policy_records_it() {
    fixture()
        .given(vec![granted("10:get:orders:15")])
        .when_async(PolicySetCommand::Revoke {
            policy: policy("10:get:orders:15"),
        })
        .await
        .then_expect_events(vec![PolicySetEvent::PolicyRevoked {
            policy: policy("10:get:orders:15"),
        }]);
}

#[tokio::test]
async fn revoking_a_policy_not_held_records_nothing() {
    fixture()
        .given(vec![granted("10:get:orders:15")])
        .when_async(PolicySetCommand::Revoke {
            policy: policy("10:put:orders:15"),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn revoking_all_policies_records_it() {
    fixture()
        .given(vec![
            granted("10:get:orders:15"),
            granted("10:*:accounts:10"),
        ])
        .when_async(PolicySetCommand::RevokeAll)
        .await
        .then_expect_events(vec![PolicySetEvent::AllPoliciesRevoked]);
}

#[tokio::test]
async fn revoking_all_of_an_empty_set_records_nothing() {
    fixture()
        .given(vec![
            granted("10:get:orders:15"),
            PolicySetEvent::AllPoliciesRevoked,
        ])
        .when_async(PolicySetCommand::RevokeAll)
        .await
        .then_expect_events(vec![]);
}

#[test]
fn a_policy_set_allows_what_any_of_its_policies_allows() {
    let mut set = PolicySet::default();
    assert!(!set.allows("10", "get", "orders", "15"));
    set.apply(granted("10:get:orders:15"));
    set.apply(granted("10:*:accounts:10"));
    assert!(set.allows("10", "get", "orders", "15"));
    assert!(set.allows("10", "delete", "accounts", "10"));
    assert!(!set.allows("10", "put", "orders", "15"));
    assert!(!set.allows("11", "get", "orders", "15"));
    assert_eq!(set.len(), 2);
    set.apply(PolicySetEvent::PolicyRevoked {
        policy: policy("10:get:orders:15"),
    });
    assert!(!set.allows("10", "get", "orders", "15"));
    set.apply(PolicySetEvent::AllPoliciesRevoked);
    assert!(set.is_empty());
}

#[test]
fn an_admin_policy_set_allows_everything_for_its_subject() {
    let set: PolicySet = [policy("1:*:*:*")].into_iter().collect();
    assert!(set.allows("1", "post", "products", "anything"));
    assert!(!set.allows("2", "post", "products", "anything"));
    assert!(set.policies().iter().all(|p| p.is_admin()));
}

#[test]
fn policy_set_events_have_stable_stored_names_and_shapes() {
    assert_eq!(PolicySet::TYPE, "policy_set");
    let events = [
        (granted("1:*:*:*"), "PolicyGranted"),
        (
            PolicySetEvent::PolicyRevoked {
                policy: policy("1:*:*:*"),
            },
            "PolicyRevoked",
        ),
        (PolicySetEvent::AllPoliciesRevoked, "AllPoliciesRevoked"),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1");
        assert_eq!(round_trip(&event)["type"], json!(name));
    }
    assert_eq!(
        serde_json::to_value(granted("10:get:orders:15")).unwrap(),
        json!({"type": "PolicyGranted", "data": {"policy": "10:get:orders:15"}})
    );
    let set: PolicySet = [policy("10:get:orders:15")].into_iter().collect();
    assert_eq!(round_trip(&set), json!({"policies": ["10:get:orders:15"]}));
}
