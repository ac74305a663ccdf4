//! The saga worker: follows the global log in commit-safe order like a projection, carries out
//! each event's commands, then stores every touched order's saga state, its step history, the
//! payment deadlines and the checkpoint in ONE transaction. A crash between a command and that
//! transaction replays the batch: the commands are refused as already done and the state is
//! written once. Orders in one batch are worked on concurrently, each order's events in log order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::order::{OrderEvent, OrderStatus};
use domain::product::ProductEvent;
use domain::wallet::WalletEvent;
use eventstore_config::{Checkpoint, CommandBus, EventMetadata, Settings, Store, StoredEvent};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::decide::{decide, SagaCommand};
use super::effects::{self, Done};
use super::state::{OrderSaga, SagaEvent};
use crate::lease::{self, RENEW_EVERY};
use crate::sql::{self, sqlite_time, Tx};

/// Checkpoint and lease name of the order saga.
pub const NAME: &str = "saga:orders";
/// Lease name of the deadline worker.
pub const DEADLINES: &str = "saga:deadlines";

/// How the saga runs.
#[derive(Debug, Clone)]
pub struct SagaOptions {
    /// Events per batch.
    pub batch: u32,
    /// Idle polling interval (PostgreSQL also wakes on NOTIFY).
    pub poll: Duration,
    /// Orders worked on at once within a batch.
    pub concurrency: usize,
    /// How long an order may await payment.
    pub payment_timeout: Duration,
    /// This process's lease owner id.
    pub owner: String,
}

impl SagaOptions {
    /// Defaults from the settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            batch: 200,
            poll: Duration::from_millis(100),
            concurrency: 32,
            payment_timeout: Duration::from_secs(settings.payment_timeout_secs),
            owner: lease::owner_id(),
        }
    }
}

/// The saga's decoding of a stored event: `Some` if it concerns an order's saga.
pub fn saga_event(
    event: &StoredEvent,
) -> Result<Option<(Uuid, SagaEvent)>, eventstore_config::ReadError> {
    let decoded = match event.aggregate_type.as_str() {
        "order" => SagaEvent::Order(event.decode::<OrderEvent>()?),
        "product" => {
            let Ok(product_id) = event.aggregate_id.parse() else {
                return Ok(None);
            };
            SagaEvent::Product {
                product_id,
                event: event.decode::<ProductEvent>()?,
            }
        }
        "wallet" => SagaEvent::Wallet(event.decode::<WalletEvent>()?),
        _ => return Ok(None),
    };
    Ok(decoded
        .order_id(&event.aggregate_id)
        .map(|order_id| (order_id, decoded)))
}

/// One row of an order's step history.
#[derive(Debug, Clone, Serialize)]
struct StepRow {
    order_id: Uuid,
    position: i64,
    event_type: String,
    step: &'static str,
    commands: Vec<CommandRecord>,
    recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
struct CommandRecord {
    #[serde(flatten)]
    command: SagaCommand,
    outcome: String,
}

/// What working on one order's events produced.
struct OrderResult {
    saga: OrderSaga,
    last_position: i64,
    steps: Vec<StepRow>,
    deadline: Option<DateTime<Utc>>,
}

/// Handles the next batch; returns how many events it consumed (0: nothing new, or another
/// writer moved the checkpoint).
pub async fn step(store: &Store, bus: &CommandBus, options: &SagaOptions) -> anyhow::Result<usize> {
    let started = Instant::now();
    let cp = sql::read_checkpoint(store, NAME).await?;
    let events = store.read_after(cp, options.batch).await?;
    let read = started.elapsed();
    let Some(last) = events.last().map(StoredEvent::checkpoint) else {
        return Ok(0);
    };
    let mut groups: Vec<(Uuid, Vec<(StoredEvent, SagaEvent)>)> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in &events {
        if let Some((order_id, decoded)) = saga_event(event)? {
            let slot = *index.entry(order_id).or_insert_with(|| {
                groups.push((order_id, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push((event.clone(), decoded));
        }
    }
    let results: Vec<Option<OrderResult>> = futures::stream::iter(groups)
        .map(|(order_id, events)| work_on_order(store, bus, options, order_id, events))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;

    let mut tx = Tx::begin(store).await?;
    if tx.lock_checkpoint(NAME).await? != cp {
        tx.rollback().await?;
        return Ok(0);
    }
    for result in results.iter().flatten() {
        save(&mut tx, result).await?;
    }
    tx.write_checkpoint(NAME, last).await?;
    tx.commit().await?;
    tracing::debug!(
        events = events.len(),
        orders = results.len(),
        read_ms = read.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "saga batch"
    );
    Ok(events.len())
}

async fn work_on_order(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
    order_id: Uuid,
    events: Vec<(StoredEvent, SagaEvent)>,
) -> anyhow::Result<Option<OrderResult>> {
    let mut saga = load(store, order_id).await?;
    let mut steps = Vec::new();
    let mut deadline = None;
    let mut last_position = 0;
    for (stored, event) in events {
        let current = match (saga.take(), &event) {
            (Some(saga), _) => saga,
            (None, SagaEvent::Order(placed @ OrderEvent::OrderPlaced { .. })) => {
                let correlation = stored
                    .metadata
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| order_id.to_string());
                match OrderSaga::start(order_id, placed, correlation) {
                    Some(saga) => saga,
                    None => continue,
                }
            }
            // Events about an order the saga never saw placed: nothing to coordinate.
            (None, _) => continue,
        };
        let mut current = current;
        current.apply(&event);
        let metadata = EventMetadata {
            actor: Some(eventstore_config::SYSTEM_ACTOR.to_string()),
            correlation_id: Some(current.correlation_id.clone()),
            causation_id: Some(format!(
                "{}:{}:{}",
                stored.aggregate_type, stored.aggregate_id, stored.version
            )),
            request_id: None,
        };
        let mut commands = Vec::new();
        let decided = decide(&current, &event);
        // The payment deadline starts when the saga asks for payment; it is stored with this
        // step, so it survives restarts and a saga that stops before charging.
        if decided
            .iter()
            .any(|c| matches!(c, SagaCommand::AwaitPayment { .. }))
        {
            deadline = chrono::Duration::from_std(options.payment_timeout)
                .ok()
                .and_then(|timeout| stored.recorded_at.checked_add_signed(timeout));
        }
        for command in decided {
            let done = execute_with_retry(bus, &current, &command, &metadata).await?;
            commands.push(CommandRecord {
                command,
                outcome: match done {
                    Done::Applied => "applied".to_string(),
                    Done::AlreadyDone => "already done".to_string(),
                    Done::Refused(reason) => format!("refused: {reason}"),
                },
            });
        }
        steps.push(StepRow {
            order_id,
            position: stored.position,
            event_type: stored.event_type.clone(),
            step: current.step(),
            commands,
            recorded_at: stored.recorded_at,
        });
        last_position = stored.position;
        saga = Some(current);
    }
    Ok(saga.map(|saga| OrderResult {
        saga,
        last_position,
        steps,
        deadline,
    }))
}

/// Retries infrastructure failures a few times before giving the batch up (it is retried).
async fn execute_with_retry(
    bus: &CommandBus,
    saga: &OrderSaga,
    command: &SagaCommand,
    metadata: &EventMetadata,
) -> anyhow::Result<Done> {
    let mut attempt = 0u32;
    loop {
        match effects::execute(bus, saga, command, metadata).await {
            Ok(done) => return Ok(done),
            Err(error) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %format!("{error:#}"), attempt, "saga command failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn load(store: &Store, order_id: Uuid) -> anyhow::Result<Option<OrderSaga>> {
    let state: Option<serde_json::Value> = match store {
        Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT state FROM order_sagas WHERE order_id = $1")
                .bind(order_id.to_string())
                .fetch_optional(pool)
                .await?
        }
        Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT state FROM order_sagas WHERE order_id = ?")
                .bind(order_id.to_string())
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(state.map(serde_json::from_value).transpose()?)
}

async fn save(tx: &mut Tx, result: &OrderResult) -> anyhow::Result<()> {
    let saga = &result.saga;
    let order_id = saga.order_id.to_string();
    let state = serde_json::to_value(saga)?;
    let finished = matches!(
        saga.status,
        OrderStatus::Approved | OrderStatus::Rejected | OrderStatus::Canceled
    );
    let now = Utc::now();
    match tx {
        Tx::Pg(tx) => {
            sqlx::query(
                "INSERT INTO order_sagas (order_id, account_id, correlation_id, step, state, \
                                          last_position, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO UPDATE \
                 SET step = excluded.step, state = excluded.state, \
                     last_position = excluded.last_position, updated_at = excluded.updated_at",
            )
            .bind(&order_id)
            .bind(saga.account_id.to_string())
            .bind(&saga.correlation_id)
            .bind(saga.step())
            .bind(&state)
            .bind(result.last_position)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            for step in &result.steps {
                sqlx::query(
                    "INSERT INTO order_saga_steps (order_id, global_position, event_type, step, \
                                                   commands, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&order_id)
                .bind(step.position)
                .bind(&step.event_type)
                .bind(step.step)
                .bind(serde_json::to_value(&step.commands)?)
                .bind(step.recorded_at)
                .execute(&mut **tx)
                .await?;
            }
            if let Some(due) = result.deadline {
                sqlx::query(
                    "INSERT INTO saga_deadlines (order_id, due_at) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&order_id)
                .bind(due)
                .execute(&mut **tx)
                .await?;
            }
            if finished {
                sqlx::query(
                    "UPDATE saga_deadlines SET done_at = $2 WHERE order_id = $1 AND done_at IS NULL",
                )
                .bind(&order_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
        }
        Tx::Sqlite(tx) => {
            sqlx::query(
                "INSERT INTO order_sagas (order_id, account_id, correlation_id, step, state, \
                                          last_position, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE \
                 SET step = excluded.step, state = excluded.state, \
                     last_position = excluded.last_position, updated_at = excluded.updated_at",
            )
            .bind(&order_id)
            .bind(saga.account_id.to_string())
            .bind(&saga.correlation_id)
            .bind(saga.step())
            .bind(&state)
            .bind(result.last_position)
            .bind(sqlite_time(now))
            .execute(&mut **tx)
            .await?;
            for step in &result.steps {
                sqlx::query(
                    "INSERT INTO order_saga_steps (order_id, global_position, event_type, step, \
                                                   commands, recorded_at) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(&order_id)
                .bind(step.position)
                .bind(&step.event_type)
                .bind(step.step)
                .bind(serde_json::to_value(&step.commands)?)
                .bind(sqlite_time(step.recorded_at))
                .execute(&mut **tx)
                .await?;
            }
            if let Some(due) = result.deadline {
                sqlx::query(
                    "INSERT INTO saga_deadlines (order_id, due_at) VALUES (?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&order_id)
                .bind(sqlite_time(due))
                .execute(&mut **tx)
                .await?;
            }
            if finished {
                sqlx::query(
                    "UPDATE saga_deadlines SET done_at = ? WHERE order_id = ? AND done_at IS NULL",
                )
                .bind(sqlite_time(now))
                .bind(&order_id)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Cancels every order whose payment deadline has passed; returns how many it canceled.
pub async fn expire_deadlines(store: &Store, bus: &CommandBus) -> anyhow::Result<usize> {
    let now = Utc::now();
    let due: Vec<(String, Option<String>)> = match store {
        Store::Postgres(pool) => {
            sqlx::query_as(
                "SELECT d.order_id, s.correlation_id FROM saga_deadlines d \
                   LEFT JOIN order_sagas s ON s.order_id = d.order_id \
                  WHERE d.done_at IS NULL AND d.due_at <= $1 ORDER BY d.due_at LIMIT 100",
            )
            .bind(now)
            .fetch_all(pool)
            .await?
        }
        Store::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT d.order_id, s.correlation_id FROM saga_deadlines d \
                   LEFT JOIN order_sagas s ON s.order_id = d.order_id \
                  WHERE d.done_at IS NULL AND d.due_at <= ? ORDER BY d.due_at LIMIT 100",
            )
            .bind(sqlite_time(now))
            .fetch_all(pool)
            .await?
        }
    };
    let mut canceled = 0;
    for (order_id, correlation_id) in due {
        let mut metadata = EventMetadata::system();
        metadata.correlation_id = correlation_id.or_else(|| Some(order_id.clone()));
        metadata.causation_id = Some(format!("deadline:{order_id}"));
        let result = bus
            .execute::<domain::order::Order>(
                &order_id,
                domain::order::OrderCommand::Cancel {
                    reason: Some("payment deadline passed".to_string()),
                },
                &(),
                &metadata,
            )
            .await;
        match result {
            Ok(committed) if !committed.events.is_empty() => canceled += 1,
            Ok(_) | Err(eventstore_config::CommandError::Rejected(_)) => {}
            Err(error) => return Err(error.into()),
        }
        match store {
            Store::Postgres(pool) => {
                sqlx::query("UPDATE saga_deadlines SET done_at = $2 WHERE order_id = $1")
                    .bind(&order_id)
                    .bind(Utc::now())
                    .execute(pool)
                    .await?;
            }
            Store::Sqlite(pool) => {
                sqlx::query("UPDATE saga_deadlines SET done_at = ? WHERE order_id = ?")
                    .bind(sqlite_time(Utc::now()))
                    .bind(&order_id)
                    .execute(pool)
                    .await?;
            }
        }
    }
    Ok(canceled)
}

/// Runs the saga (under its lease) and the deadline worker (under its own) until shutdown.
pub async fn run(
    store: Store,
    settings: Settings,
    mut wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let options = SagaOptions::from_settings(&settings);
    let bus = CommandBus::new(store.clone(), &settings);
    let deadlines = tokio::spawn(run_deadlines(
        store.clone(),
        bus.clone(),
        options.owner.clone(),
        shutdown.clone(),
    ));
    let mut shutdown = shutdown;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let Some(mut held) = lease::try_acquire(&store, NAME, &options.owner)
            .await
            .unwrap_or(None)
        else {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        tracing::info!(owner = %options.owner, "order saga lease acquired");
        let mut renewed = Instant::now();
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if renewed.elapsed() >= RENEW_EVERY {
                if !held.renew(&store).await.unwrap_or(false) {
                    tracing::warn!("order saga lease lost");
                    break;
                }
                renewed = Instant::now();
            }
            match step(&store, &bus, &options).await {
                Ok(n) if n > 0 => failures = 0,
                Ok(_) => {
                    failures = 0;
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(options.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(error = %format!("{error:#}"), failures, "saga batch failed; retrying");
                    let delay = Duration::from_millis(100 << failures.min(6));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        held.release(&store).await;
    }
    deadlines.await.ok();
    Ok(())
}

async fn run_deadlines(
    store: Store,
    bus: CommandBus,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) {
    const EVERY: Duration = Duration::from_millis(500);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let held = lease::try_acquire(&store, DEADLINES, &owner)
            .await
            .unwrap_or(None);
        if let Some(mut held) = held {
            loop {
                if *shutdown.borrow() || !held.renew(&store).await.unwrap_or(false) {
                    break;
                }
                if let Err(error) = expire_deadlines(&store, &bus).await {
                    tracing::warn!(error = %format!("{error:#}"), "deadline check failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = shutdown.changed() => {}
                }
            }
            held.release(&store).await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Forgets every saga state and moves the saga's checkpoint back to the start (for a replay;
/// payment deadlines are kept). Running it while the saga runs is safe: the next batch sees
/// the moved checkpoint.
pub async fn reset(store: &Store) -> anyhow::Result<()> {
    let mut tx = Tx::begin(store).await?;
    tx.lock_checkpoint(NAME).await?;
    tx.execute("DELETE FROM order_saga_steps").await?;
    tx.execute("DELETE FROM order_sagas").await?;
    tx.write_checkpoint(NAME, Checkpoint::START).await?;
    tx.commit().await?;
    Ok(())
}

/// Runs the projection workers and, beside them, the order saga and its deadline worker, until
/// `shutdown` completes (`eventshop projectors run`, `eventshop serve`).
pub async fn run_with_projections(
    store: Store,
    settings: &Settings,
    options: crate::RunnerOptions,
    projections: Vec<std::sync::Arc<dyn crate::Projection>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (wake_tx, wake_rx) = watch::channel(0u64);
    let listener = tokio::spawn(crate::runner::listen(
        store.clone(),
        wake_tx,
        stop_rx.clone(),
    ));
    let saga = tokio::spawn(run(store.clone(), settings.clone(), wake_rx, stop_rx));
    let result = crate::runner::run_with(store, options, projections, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    match saga.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(error = %format!("{error:#}"), "the saga ended with an error")
        }
        Err(error) => tracing::error!(%error, "the saga panicked"),
    }
    listener.await.ok();
    result
}
