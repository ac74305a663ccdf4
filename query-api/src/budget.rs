//! One request's share of the connection pool. A request runs with a [`Budget`] (its
//! DataLoaders' batches too): at most `in_flight` of its read-model statements run at once
//! (sibling fields otherwise all take a connection together) and at most `statements` in all; once spent, its next statement fails
//! and the field answers `BAD_USER_INPUT` ("ask for less in one request"). Together with the
//! cap on concurrent requests ([`crate::Options::max_concurrent_requests`]) and the request
//! timeout, this leaves connections for other callers, the projectors and the saga.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

/// The statements one request may still run.
#[derive(Debug)]
pub(crate) struct Budget {
    in_flight: Arc<Semaphore>,
    left: AtomicUsize,
    limit: usize,
    spent: AtomicBool,
}

impl Budget {
    pub(crate) fn new(statements: usize, in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            in_flight: Arc::new(Semaphore::new(in_flight.max(1))),
            left: AtomicUsize::new(statements),
            limit: statements,
            spent: AtomicBool::new(false),
        })
    }

    /// Whether a statement was refused because the budget was spent.
    pub(crate) fn spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }
}

/// Runs `future` (one request's execution) under `budget`.
pub(crate) async fn within<F: Future>(budget: Arc<Budget>, future: F) -> F::Output {
    BUDGET.scope(budget, future).await
}

/// Admits one statement of the current request (a no-op outside a request): takes one
/// statement from the budget and waits for an in-flight slot, held until the permit drops.
pub(crate) async fn admit() -> Result<Option<OwnedSemaphorePermit>, sqlx::Error> {
    let Ok(budget) = BUDGET.try_with(Arc::clone) else {
        return Ok(None);
    };
    let taken = budget
        .left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    if taken.is_err() {
        budget.spent.store(true, Ordering::Relaxed);
        return Err(sqlx::Error::Protocol(format!(
            "the request's budget of {} statements is spent",
            budget.limit
        )));
    }
    let permit = budget
        .in_flight
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    Ok(Some(permit))
}

/// The current request's statement limit, when its budget is spent.
pub(crate) fn spent_limit() -> Option<usize> {
    BUDGET
        .try_with(|b| b.spent().then_some(b.limit))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_a_budget_of_two_when_a_third_statement_asks_then_it_is_refused() {
        let budget = Budget::new(2, 1);
        within(budget.clone(), async {
            assert!(admit().await.unwrap().is_some());
            assert!(admit().await.unwrap().is_some());
            assert!(spent_limit().is_none());
            assert!(admit().await.is_err());
            assert_eq!(spent_limit(), Some(2));
        })
        .await;
        assert!(budget.spent());
        assert!(admit().await.unwrap().is_none(), "outside a request");
    }

    #[tokio::test]
    async fn given_one_slot_when_a_statement_runs_then_the_next_waits_for_it() {
        let budget = Budget::new(10, 1);
        within(budget, async {
            let first = admit().await.unwrap();
            let second = tokio::time::timeout(std::time::Duration::from_millis(50), admit()).await;
            assert!(second.is_err(), "the second statement waits");
            drop(first);
            assert!(admit().await.unwrap().is_some());
        })
        .await;
    }
}
