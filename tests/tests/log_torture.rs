//! Concurrency torture of the commit-safe log reader on PostgreSQL: writers hold their
//! transactions open for random times after taking a position, so positions commit out of order.
//! The commit-safe reader must still see every committed event exactly once; a naive
//! `global_position > last` reader, run under the same load, is shown to skip events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventshop_tests::TestStore;
use eventstore_config::{Checkpoint, Store};
use rand::Rng;
use sqlx::PgPool;

const WRITERS: usize = 8;
const AGGREGATES_PER_WRITER: usize = 6;
const EVENTS_PER_WRITER: usize = 60;

type Key = (String, u64);

fn pool(store: &Store) -> PgPool {
    match store {
        Store::Postgres(pool) => pool.clone(),
        Store::Sqlite(_) => panic!("this suite is PostgreSQL-only"),
    }
}

async fn insert(tx: &mut sqlx::PgConnection, aggregate_id: &str, sequence: u64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata) \
         VALUES ('torture', $1, $2, 'Tick', '1', '{}'::json, '{}'::json)",
    )
    .bind(aggregate_id)
    .bind(sequence as i64)
    .execute(tx)
    .await
    .expect("insert");
}

/// One writer: appends to its own aggregates, sleeping inside each transaction, rolling back
/// about one in eight. Returns what it committed.
async fn writer(pool: PgPool, writer: usize) -> Vec<Key> {
    let mut next: Vec<u64> = vec![1; AGGREGATES_PER_WRITER];
    let mut committed = Vec::new();
    for _ in 0..EVENTS_PER_WRITER {
        let (slot, delay_ms, rollback) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(0..AGGREGATES_PER_WRITER),
                rng.gen_range(0..12u64),
                rng.gen_ratio(1, 8),
            )
        };
        let aggregate_id = format!("w{writer}-a{slot}");
        let mut tx = pool.begin().await.expect("begin");
        insert(&mut tx, &aggregate_id, next[slot]).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if rollback {
            tx.rollback().await.expect("rollback");
        } else {
            tx.commit().await.expect("commit");
            committed.push((aggregate_id, next[slot]));
            next[slot] += 1;
        }
    }
    committed
}

async fn commit_safe_reader(store: Store, done: Arc<AtomicBool>) -> Vec<Key> {
    let mut checkpoint = Checkpoint::START;
    let mut seen = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let batch = store.read_after(checkpoint, 37).await.expect("read_after");
        if batch.is_empty() {
            // Done only when nothing committed lies beyond the checkpoint: an empty read can
            // also mean an older transaction elsewhere in the cluster still holds the reader back.
            if finished && pending_after(&store, checkpoint).await == 0 {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for event in batch {
            checkpoint = event.checkpoint();
            seen.push((event.aggregate_id, event.version));
        }
    }
}

/// Committed events after `checkpoint`, counted without the commit-safe reader's wait.
async fn pending_after(store: &Store, checkpoint: Checkpoint) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
    )
    .bind(checkpoint.transaction_id.to_string())
    .bind(checkpoint.position)
    .fetch_one(&pool(store))
    .await
    .expect("count pending events")
}

async fn naive_reader(pool: PgPool, done: Arc<AtomicBool>) -> Vec<Key> {
    let mut last = 0i64;
    let mut seen = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT global_position, aggregate_id, sequence FROM events \
              WHERE global_position > $1 ORDER BY global_position LIMIT 37",
        )
        .bind(last)
        .fetch_all(&pool)
        .await
        .expect("naive read");
        if rows.is_empty() {
            if finished {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for (position, aggregate_id, sequence) in rows {
            last = position;
            seen.push((aggregate_id, sequence as u64));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_eight_slow_writers_the_commit_safe_reader_sees_every_committed_event_once_in_order_and_a_naive_reader_skips_some(
) {
    let test = TestStore::postgres().await;
    let pool = pool(&test.store);
    let done = Arc::new(AtomicBool::new(false));

    let safe = tokio::spawn(commit_safe_reader(test.store.clone(), done.clone()));
    let naive = tokio::spawn(naive_reader(pool.clone(), done.clone()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(pool.clone(), w)))
        .collect();
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    done.store(true, Ordering::SeqCst);
    let safe = safe.await.expect("commit-safe reader");
    let naive = naive.await.expect("naive reader");

    // Every committed event exactly once, nothing that was rolled back.
    let committed_set: HashSet<Key> = committed.iter().cloned().collect();
    let mut counts: HashMap<&Key, usize> = HashMap::new();
    for key in &safe {
        *counts.entry(key).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "read twice: {duplicates:?}");
    let safe_set: HashSet<Key> = safe.iter().cloned().collect();
    assert_eq!(
        safe_set, committed_set,
        "the commit-safe reader lost or invented events"
    );
    assert!(committed.len() > WRITERS * EVENTS_PER_WRITER / 2);

    // Each aggregate's events arrive in its own sequence order: 1, 2, 3, …
    let mut per_aggregate: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (aggregate, version) in &safe {
        per_aggregate.entry(aggregate).or_default().push(*version);
    }
    for (aggregate, versions) in per_aggregate {
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "{aggregate} out of order");
    }

    // Under the same load, polling `global_position > last` loses events.
    let naive_set: HashSet<Key> = naive.into_iter().collect();
    let skipped = committed_set.difference(&naive_set).count();
    assert!(
        skipped > 0,
        "the naive reader was expected to skip events under this load"
    );
}

#[tokio::test]
async fn an_event_committed_after_a_higher_position_is_skipped_by_a_naive_reader_but_not_by_the_commit_safe_one(
) {
    let test = TestStore::postgres().await;
    let pool = pool(&test.store);

    // A takes the lower position and stays open; B takes the next one and commits first.
    let mut a = pool.begin().await.unwrap();
    insert(&mut a, "slow", 1).await;
    let mut b = pool.begin().await.unwrap();
    insert(&mut b, "fast", 1).await;
    b.commit().await.unwrap();

    let naive_last: i64 = sqlx::query_scalar("SELECT MAX(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The commit-safe reader waits for A: nothing is safe to read yet.
    assert!(test
        .store
        .read_after(Checkpoint::START, 10)
        .await
        .unwrap()
        .is_empty());

    a.commit().await.unwrap();

    let naive_after: Vec<(String,)> =
        sqlx::query_as("SELECT aggregate_id FROM events WHERE global_position > $1")
            .bind(naive_last)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(naive_after.is_empty(), "the naive reader never sees 'slow'");

    // (Polls: other tests' transactions on the same cluster may hold the reader back briefly.)
    let safe: Vec<String> = eventshop_tests::read_log(&test.store, Checkpoint::START, 10, 2)
        .await
        .into_iter()
        .map(|e| e.aggregate_id)
        .collect();
    assert_eq!(safe, vec!["slow".to_string(), "fast".to_string()]);
}

#[tokio::test]
async fn the_live_log_of_the_console_returns_an_event_that_committed_after_a_higher_position() {
    let test = TestStore::postgres().await;
    let pool = pool(&test.store);
    let filter = eventstore_config::LogFilter {
        aggregate_type: Some("torture".into()),
        ..Default::default()
    };

    // Given a live view from the head, while A holds the lower position open and B commits…
    let mut checkpoint = test.store.live_start().await.unwrap();
    let mut a = pool.begin().await.unwrap();
    insert(&mut a, "slow", 1).await;
    let mut b = pool.begin().await.unwrap();
    insert(&mut b, "fast", 1).await;
    b.commit().await.unwrap();

    // …when the view reads, then A commits, and the view reads on from its checkpoint…
    let mut seen: Vec<String> = Vec::new();
    let mut a = Some(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 && tokio::time::Instant::now() < deadline {
        let events = test.store.log_after(&filter, checkpoint, 10).await.unwrap();
        if let Some(last) = events.last() {
            checkpoint = last.checkpoint();
        }
        seen.extend(events.into_iter().map(|e| e.aggregate_id));
        if let Some(a) = a.take() {
            a.commit().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // …then it has shown both events, each once, in commit-safe order.
    assert_eq!(seen, vec!["slow".to_string(), "fast".to_string()]);
}
