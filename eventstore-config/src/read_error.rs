//! Why reading stored events failed: the one error type of the log, temporal loads and the
//! personal-data opening that runs as events are read.

/// A failure reading the log.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("reading the event store failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode into its aggregate's event type.
    #[error(
        "stored event {aggregate_type}/{aggregate_id} version {version} does not decode: {reason}"
    )]
    Corrupt {
        /// Aggregate type of the event.
        aggregate_type: String,
        /// Aggregate id of the event.
        aggregate_id: String,
        /// Its version (sequence).
        version: u64,
        /// The decoder's message.
        reason: String,
    },
    /// A stored event's schema version is one this binary cannot upcast (stored by a newer
    /// eventshop, or unreadable): never decoded by guesswork.
    #[error(
        "stored event at position {position} ({aggregate_type}/{aggregate_id} version {version}) \
         cannot be read: {source}"
    )]
    Upcast {
        /// Its global position.
        position: i64,
        /// Aggregate type of the event.
        aggregate_type: String,
        /// Aggregate id of the event.
        aggregate_id: String,
        /// Its version (sequence).
        version: u64,
        /// Why (event type and both schema versions).
        source: domain::upcast::UpcastError,
    },
}
