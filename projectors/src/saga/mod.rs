//! The order saga (a process manager on the commit-safe log): OrderPlaced → reserve every item
//! (sorted product ids) → all reserved → OrderAwaitingPayment → Wallet.Charge → PaymentCaptured →
//! OrderApproved → CommitReservation; with compensation (release, refund) on a rejected item, a
//! declined payment, a cancel, or a passed payment deadline. Exactly-once effects come from
//! deterministic commands the domain refuses a second time (one reservation per (product,
//! order), one charge per (wallet, order), an order changes state once) plus the saga state and
//! checkpoint committed together.

pub mod decide;
pub mod effects;
pub mod state;
pub mod trace;
pub mod worker;

pub use decide::{decide, SagaCommand};
pub use state::{OrderSaga, Payment, Reservation, SagaEvent};
pub use worker::{
    expire_deadlines, reset, run, run_with_projections, step, SagaOptions, DEADLINES, NAME,
};
