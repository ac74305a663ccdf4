//! The order saga (a process manager on the commit-safe log): OrderPlaced → reserve every item
//! (sorted product ids) → all reserved → OrderAwaitingPayment → Wallet.Charge → PaymentCaptured →
//! OrderApproved → CommitReservation; with compensation (release, refund) on a rejected item, a
//! declined payment, a cancel, or a passed payment deadline. Exactly-once effects come from
//! deterministic commands the domain refuses a second time (one reservation per (product,
//! order), one charge per (wallet, order), an order changes state once) plus the saga state and
//! checkpoint committed together.
//!
//! * [`state`]: the saga state and how events fold into it; [`decide`]: the commands an event
//!   calls for; [`effects`]: carrying a command out.
//! * [`decode`]: which stored events concern a saga; [`order_steps`]: one order's events
//!   through decide and effects, with retries; [`batch`]: one batch, saved with the checkpoint
//!   (a poison order parked); [`parked`]: parked orders worked on again.
//! * [`options`]: the saga's name and options; [`deadlines`]: the payment-deadline worker;
//!   [`run`]: the saga's lease loop and reset;
//!   [`supervise`]: the projections, the saga and the deadline worker under one listener.
//! * [`trace`]: an order's saga made visible.
//!
//! The saga's tables are owned by [`eventstore_config::saga_tables`].

pub mod batch;
pub mod deadlines;
pub mod decide;
pub mod decode;
pub mod effects;
pub mod options;
mod order_steps;
pub mod parked;
pub mod run;
pub mod state;
pub mod supervise;
pub mod trace;

pub use batch::handle_batch;
pub use deadlines::{expire_deadlines, DEADLINES};
pub use decide::{decide, SagaCommand};
pub use decode::saga_event;
pub use options::{SagaOptions, NAME, PARK_AFTER_ATTEMPTS};
pub use run::{reset, run};
pub use state::{OrderSaga, Payment, Reservation, SagaEvent};
pub use supervise::run_with_projections;
