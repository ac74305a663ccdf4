//! The subscription root: `events` (catch-up, then live, from the log in commit-safe order),
//! `orderUpdated` (an order's status and saga step until it is final) and `projectionLag`.
//! Each stream re-checks its caller (token, account, policies) with the shared authenticator
//! whenever it has something to deliver, and at least every [`RECHECK`]: a deleted account, an
//! expired or revoked token, or a policy revoked on the one aggregate followed ends the stream
//! with an error.

use std::collections::VecDeque;
use std::time::Duration;

use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, SimpleObject, Subscription, ID};
use axum::http::HeaderValue;
use eventstore_config::{Checkpoint, Store};

use crate::auth::Caller;
use crate::error::{bad_input, error, forbidden, internal, Code, GqlResult};
use crate::history;
use crate::subscription_follower::Follower;
use crate::types::{EventRecord, OrderStatus, ProjectionInfo};

/// How often a quiet stream re-checks its caller.
const RECHECK: Duration = Duration::from_secs(1);
/// Events read from the log per step.
const BATCH: u32 = 500;

/// The `Authorization` value of a WebSocket connection (its `connection_init` payload).
#[derive(Debug, Clone)]
pub(crate) struct Token(pub(crate) Option<String>);

/// What the subscriptions of one process share (added to each subscription request).
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) store: Store,
    pub(crate) authenticator: access::Authenticator,
    pub(crate) follower: Follower,
}

/// The subscription root.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subscription;

/// An order's current status and saga step.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
pub struct OrderUpdate {
    /// The order id.
    pub id: ID,
    /// Its status.
    pub status: OrderStatus,
    /// Why it was rejected or canceled.
    pub reason: Option<String>,
    /// The saga's step (`null` before the saga saw the order).
    pub saga_step: Option<String>,
    /// Whether the order is final (APPROVED, REJECTED or CANCELED): the last update.
    pub is_final: bool,
}

struct Subscriber {
    live: Live,
    token: Token,
}

impl Subscriber {
    fn of(ctx: &Context<'_>) -> GqlResult<Self> {
        let live = ctx
            .data::<Live>()
            .map_err(|_| internal("subscription data missing"))?
            .clone();
        let token = ctx.data::<Token>().cloned().unwrap_or(Token(None));
        Ok(Self { live, token })
    }

    /// The caller now, as the shared authenticator sees it, with its current policies.
    async fn caller(&self) -> GqlResult<Caller> {
        let value = match &self.token.0 {
            None => None,
            Some(text) => Some(HeaderValue::from_str(text).map_err(|_| {
                error(
                    Code::Unauthenticated,
                    "the Authorization value is not valid",
                )
            })?),
        };
        match self.live.authenticator.authenticate(value.as_ref()).await {
            Ok(principal) => Ok(Caller {
                subject: principal.subject,
                policies: principal.grants.policies().clone(),
            }),
            Err(access::AuthError::Missing) => Err(error(
                Code::Unauthenticated,
                "authentication required: send {\"Authorization\": \"Bearer <access token>\"} in connection_init",
            )),
            Err(access::AuthError::Invalid(why)) => Err(error(Code::Unauthenticated, why)),
            Err(access::AuthError::Unavailable(cause)) => Err(internal(format!("{cause:#}"))),
        }
    }
}

/// The `events` filter.
struct EventFilter {
    aggregate_type: Option<&'static str>,
    aggregate_id: Option<String>,
    actor: Option<String>,
}

impl EventFilter {
    fn admits(&self, event: &eventstore_config::StoredEvent) -> bool {
        self.aggregate_type
            .is_none_or(|t| t == event.aggregate_type)
            && self
                .aggregate_id
                .as_deref()
                .is_none_or(|id| id == event.aggregate_id)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| event.metadata.actor.as_deref() == Some(a))
    }

    /// FORBIDDEN when the filter names one aggregate the caller may not read.
    fn check(&self, caller: &Caller) -> GqlResult<()> {
        if let (Some(kind), Some(id)) = (self.aggregate_type, self.aggregate_id.as_deref()) {
            let (allowed, _) = history::access(caller, kind, id).map_err(bad_input)?;
            if !allowed {
                return Err(forbidden(&format!("the events of {kind}/{id}")));
            }
        }
        Ok(())
    }
}

struct EventsState {
    subscriber: Subscriber,
    filter: EventFilter,
    checkpoint: Checkpoint,
    ready: VecDeque<EventRecord>,
    wake: tokio::sync::watch::Receiver<Checkpoint>,
    done: bool,
}

/// Waits until `wake` changes, re-checking the caller at least every [`RECHECK`] meanwhile
/// (a quiet stream reads nothing from the log: only the shared follower does).
async fn wait_for_change<T>(
    subscriber: &Subscriber,
    wake: &mut tokio::sync::watch::Receiver<T>,
    check: impl Fn(&Caller) -> GqlResult<()>,
) -> GqlResult<()> {
    loop {
        match tokio::time::timeout(RECHECK, wake.changed()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(internal("the log follower stopped")),
            Err(_) => check(&subscriber.caller().await?)?,
        }
    }
}

impl EventsState {
    async fn wait(&mut self) -> GqlResult<()> {
        let filter = &self.filter;
        wait_for_change(&self.subscriber, &mut self.wake, |caller| {
            filter.check(caller)
        })
        .await
    }

    /// The next event to deliver, or the error that ends the stream.
    async fn next(&mut self) -> GqlResult<EventRecord> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Ok(record);
            }
            let caller = self.subscriber.caller().await?;
            self.filter.check(&caller)?;
            self.wake.borrow_and_update();
            let events = self
                .subscriber
                .live
                .store
                .read_after(self.checkpoint, BATCH)
                .await
                .map_err(internal)?;
            if events.is_empty() {
                self.wait().await?;
                continue;
            }
            for event in events {
                self.checkpoint = event.checkpoint();
                if !self.filter.admits(&event) {
                    continue;
                }
                let Ok((allowed, visibility)) =
                    history::access(&caller, &event.aggregate_type, &event.aggregate_id)
                else {
                    continue;
                };
                if !allowed {
                    continue;
                }
                let record = history::stored_record(&event).map_err(internal)?;
                self.ready.push_back(visibility.apply(record));
            }
        }
    }
}

/// The order's update now (`None`: not projected yet).
async fn order_update(store: &Store, id: &str) -> GqlResult<Option<(String, OrderUpdate)>> {
    let current = read_models::orders::by_id(id, None);
    let Some(order) = crate::db::fetch_optional(store, &current)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let step = {
        let _slot = crate::budget::admit().await.map_err(internal)?;
        eventstore_config::saga_tables::current_step(store, id)
            .await
            .map_err(internal)?
    };
    let status = OrderStatus::from(order.status);
    let is_final = matches!(
        status,
        OrderStatus::Approved | OrderStatus::Rejected | OrderStatus::Canceled
    );
    Ok(Some((
        order.account_id,
        OrderUpdate {
            id: ID(id.to_owned()),
            status,
            reason: order.reason,
            saga_step: step,
            is_final,
        },
    )))
}

/// A stream that ends after its first error.
fn ending<T: Send + 'static, S: Send + 'static>(
    state: S,
    step: impl Fn(
            S,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<(GqlResult<T>, S)>> + Send>>
        + Send
        + 'static,
) -> impl Stream<Item = GqlResult<T>> {
    stream::unfold(Some(state), move |state| {
        let next = state.map(&step);
        async move {
            let (item, state) = next?.await?;
            let state = item.is_ok().then_some(state);
            Some((item, state))
        }
    })
}

#[Subscription]
impl Subscription {
    /// The log's events the caller may read (the same rules as `history`, with the caller's
    /// policies at each delivery), each in its public view: first those after `afterPosition`
    /// (0: from the start), then each new one as it commits, in log order, each once. Filters:
    /// `aggregateType` (log names: `order`, …, or ACL names: `orders`, …), `aggregateId`
    /// (with a type), `actor`.
    async fn events(
        &self,
        ctx: &Context<'_>,
        aggregate_type: Option<String>,
        aggregate_id: Option<ID>,
        actor: Option<String>,
        after_position: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<EventRecord>>> {
        let subscriber = Subscriber::of(ctx)?;
        let aggregate_type = match aggregate_type.as_deref() {
            None => None,
            Some(name) => Some(crate::query::aggregate_type(name).ok_or_else(|| {
                bad_input(format!(
                    "unknown aggregateType {name:?}: use account, wallet, product, order, policy_set or projection"
                ))
            })?),
        };
        if aggregate_id.is_some() && aggregate_type.is_none() {
            return Err(bad_input("aggregateId needs aggregateType"));
        }
        let after = after_position.unwrap_or(0);
        if after < 0 {
            return Err(bad_input(format!(
                "afterPosition must be 0 or more, got {after}"
            )));
        }
        let filter = EventFilter {
            aggregate_type,
            aggregate_id: aggregate_id.map(|id| id.to_string()),
            actor,
        };
        let caller = subscriber.caller().await?;
        filter.check(&caller)?;
        let store = subscriber.live.store.clone();
        let checkpoint = store.checkpoint_at(after).await.map_err(internal)?;
        let wake = subscriber.live.follower.log.clone();
        let state = EventsState {
            subscriber,
            filter,
            checkpoint,
            ready: VecDeque::new(),
            wake,
            done: false,
        };
        Ok(ending(state, |mut state: EventsState| {
            Box::pin(async move {
                if state.done {
                    return None;
                }
                let item = state.next().await;
                state.done = item.is_err();
                Some((item, state))
            })
        }))
    }

    /// The order's status and saga step now, then each change of either, ending after the
    /// final one (APPROVED, REJECTED, CANCELED): a late subscriber gets just the end. Needs
    /// `get` on `orders:<id>` (its customer, or an admin): else FORBIDDEN.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<OrderUpdate>>> {
        let subscriber = Subscriber::of(ctx)?;
        let id = uuid::Uuid::parse_str(&id)
            .map_err(|_| bad_input(format!("id must be a UUID, got {:?}", id.as_str())))?
            .to_string();
        let caller = subscriber.caller().await?;
        caller.require("orders", &id)?;
        let wake = subscriber.live.follower.projections.clone();
        struct State {
            subscriber: Subscriber,
            id: String,
            last: Option<OrderUpdate>,
            wake: tokio::sync::watch::Receiver<Vec<(String, i64)>>,
        }
        let state = State {
            subscriber,
            id,
            last: None,
            wake,
        };
        Ok(ending(state, |mut state: State| {
            Box::pin(async move {
                if state.last.as_ref().is_some_and(|u| u.is_final) {
                    return None;
                }
                let item = async {
                    loop {
                        let caller = state.subscriber.caller().await?;
                        caller.require("orders", &state.id)?;
                        state.wake.borrow_and_update();
                        let now = order_update(&state.subscriber.live.store, &state.id).await?;
                        if let Some((_, update)) = now {
                            if state.last.as_ref() != Some(&update) {
                                state.last = Some(update.clone());
                                return Ok(update);
                            }
                        }
                        let id = state.id.clone();
                        wait_for_change(&state.subscriber, &mut state.wake, |caller| {
                            caller.require("orders", &id)
                        })
                        .await?;
                    }
                }
                .await;
                Some((item, state))
            })
        }))
    }

    /// Each projection's position and lag (events after its checkpoint), now and whenever a
    /// position changes (admins: `get` on `projections:*`).
    async fn projection_lag(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<Vec<ProjectionInfo>>>> {
        let subscriber = Subscriber::of(ctx)?;
        subscriber.caller().await?.require("projections", "*")?;
        let mut wake = subscriber.live.follower.projections.clone();
        wake.mark_changed();
        let state = (subscriber, wake);
        Ok(ending(state, |(subscriber, mut wake)| {
            Box::pin(async move {
                let item = async {
                    subscriber.caller().await?.require("projections", "*")?;
                    wait_for_change(&subscriber, &mut wake, |caller| {
                        caller.require("projections", "*")
                    })
                    .await?;
                    crate::reads::projections(&subscriber.live.store)
                        .await
                        .map_err(internal)
                }
                .await;
                Some((item, (subscriber, wake)))
            })
        }))
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}
