//! Names of the metadata keys every stored event carries (see DESIGN "Temporal queries").
//!
//! The domain never writes metadata itself; these constants only keep the spelling in one place
//! for the crates that do.

/// The account id (as a string) that caused the event, or [`SYSTEM_ACTOR`].
pub const ACTOR: &str = "actor";
/// Id shared by every event caused, directly or not, by one external request.
pub const CORRELATION_ID: &str = "correlation_id";
/// Id of the command or event that directly caused this event.
pub const CAUSATION_ID: &str = "causation_id";
/// Id of the HTTP request that carried the command, when there was one.
pub const REQUEST_ID: &str = "request_id";
/// The actor recorded for events caused by the system itself (sagas, CLI, timers).
pub const SYSTEM_ACTOR: &str = "system";
