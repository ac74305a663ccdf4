//! The log's keyset pages (`Store::log_page`, the console's log): every matching event once,
//! newest first, on both stores, also with a time range that ends far in the past and with
//! events whose times do not follow their positions.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use eventshop_tests::TestStore;
use eventstore_config::{LogFilter, Sql, StoredEvent};
use serde_json::json;

eventshop_tests::store_tests!(
    given_a_time_range_that_ends_in_the_past_when_paged_then_every_event_in_it_comes_once_newest_first,
    given_no_time_range_when_paged_then_every_event_comes_once_by_position,
);

const EVENTS: i64 = 130;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Event `i` (1-based, also its position) is recorded `i` minutes after the start, except that
/// every tenth one is recorded 90 s earlier than its position suggests (a transaction that took
/// its position late), so time order and position order differ.
fn time_of(i: i64) -> DateTime<Utc> {
    let minutes = start() + TimeDelta::minutes(i);
    if i % 10 == 0 {
        minutes - TimeDelta::seconds(90)
    } else {
        minutes
    }
}

async fn given_events(test: &TestStore) {
    for i in 1..=EVENTS {
        let id = format!("00000000-0000-7000-8000-{i:012}");
        Sql::new(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata, recorded_at) \
             VALUES ('product', $1, 1, 'ProductRestocked', '1', $2, $3, $4)",
        )
        .arg(id.as_str())
        .arg(json!({"ProductRestocked": {"quantity": 1}}))
        .arg(json!({"actor": "system", "correlation_id": id}))
        .log_time(time_of(i))
        .execute(&test.store)
        .await
        .unwrap();
    }
}

async fn all_pages(test: &TestStore, filter: &LogFilter) -> Vec<StoredEvent> {
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = test.store.log_page(filter, before, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.position);
        seen.extend(page);
    }
    seen
}

async fn given_a_time_range_that_ends_in_the_past_when_paged_then_every_event_in_it_comes_once_newest_first(
    test: TestStore,
) {
    given_events(&test).await;
    // Given a range from minute 20 to minute 95 (the log goes on to minute 130)…
    let filter = LogFilter {
        from: Some(start() + TimeDelta::minutes(20)),
        to: Some(start() + TimeDelta::minutes(95)),
        ..LogFilter::default()
    };
    // …when every page is read through the cursor…
    let seen = all_pages(&test, &filter).await;
    // …then each event recorded in the range comes exactly once, newest first by time.
    let mut expected: Vec<(DateTime<Utc>, i64)> = (1..=EVENTS)
        .map(|i| (time_of(i), i))
        .filter(|(t, _)| *t >= filter.from.unwrap() && *t <= filter.to.unwrap())
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
    let expected: Vec<i64> = expected.into_iter().map(|(_, p)| p).collect();
    assert_eq!(positions, expected);
}

async fn given_no_time_range_when_paged_then_every_event_comes_once_by_position(test: TestStore) {
    given_events(&test).await;
    let filter = LogFilter {
        aggregate_type: Some("product".into()),
        ..LogFilter::default()
    };
    let seen: Vec<i64> = all_pages(&test, &filter)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(seen, (1..=EVENTS).rev().collect::<Vec<_>>());
}
