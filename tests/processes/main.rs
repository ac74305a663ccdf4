//! Tests that run the real `eventshop` binary as child processes: projector workers killed with
//! SIGKILL and restarted, and several runners sharing the projections through leases; the API
//! servers started and stopped with SIGTERM, and `accounts create-admin`.

mod cli;
mod projectors;
mod public_events;
mod relay;
mod saga;
mod serve;
mod subscriptions;
