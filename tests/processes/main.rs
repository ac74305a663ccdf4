//! Tests that run the real `eventshop` binary as child processes: projector workers killed with
//! SIGKILL and restarted, and several runners sharing the projections through leases.

mod projectors;
mod serve;
