//! HTTP plumbing shared by eventshop's REST and GraphQL APIs, so that neither API depends on the
//! other: the server ([`serve`]), the request-body deadline ([`deadline`]), bounded body reads
//! that never answer while the client is still sending ([`body`]), and the shutdown signal.

pub mod body;
pub mod deadline;
pub mod leftover;
pub mod serve;
pub mod shutdown;

pub use serve::{serve, serve_with, ServeLimits};
pub use shutdown::shutdown_signal;
