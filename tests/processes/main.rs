//! Tests that run the real `eventshop` binary as child processes: projector workers killed with
//! SIGKILL and restarted, and several runners sharing the projections through leases; the API
//! servers started and stopped with SIGTERM, `accounts create-admin` and `accounts erase`,
//! `projections dead-letters|retry|skip`.

mod cli;
mod dead_letters;
mod erasure;
mod projectors;
mod public_events;
mod relay;
mod saga;
mod serve;
mod subscriptions;
mod transfer;
