//! What `projections list|status` shows: each projection's (and each of its segments')
//! version (the code's and the one
//! its rows were built by), checkpoint position, lag (events after the checkpoint, and seconds
//! since the oldest of them was recorded), state (with a rebuild's progress), owner, parked
//! events and recorded skips.

use chrono::{DateTime, Utc};
use eventstore_config::segments::parse_checkpoint_name;
use eventstore_config::{followers, Checkpoint, Store};

use crate::dead_letters::{self, Skipped};
use crate::lease;
use crate::progress;
use crate::read_models;
use crate::rebuild::rebuild_position;
use crate::sql;
use crate::versions::percent;

/// One projection's status.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    /// Stable name.
    pub name: String,
    /// The model's version (code).
    pub version: i32,
    /// Global position of the last applied event (0: none).
    pub position: i64,
    /// Events after the checkpoint.
    pub lag_events: i64,
    /// Seconds since the oldest unapplied event was recorded (None: no lag).
    pub lag_seconds: Option<f64>,
    /// `running` (owned, behind), `idle` (owned, caught up), `stuck` (an event is parked),
    /// `rebuilding` (a rebuild is under way) or `stopped` (no worker owns it).
    pub state: String,
    /// The owning worker, when one holds the lease.
    pub owner: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Events parked in `projection_dead_letters`.
    pub dead_letters: i64,
    /// The version whose code built the rows (`None`: not recorded yet).
    pub built_version: Option<i32>,
    /// How far a rebuild under way has got, in percent of the log.
    pub rebuild_percent: Option<f64>,
    /// Parked events skipped so far (who, when, why), oldest first.
    pub skips: Vec<Skipped>,
}

impl ProjectionStatus {
    /// The state as shown: `rebuilding (v1 → v2) 45%` while a rebuild runs; `idle (rows v1)`
    /// while the rows are another version's and no rebuild runs (no runner started yet);
    /// else the state.
    pub fn state_text(&self) -> String {
        let stale = self.built_version.filter(|built| *built != self.version);
        match (self.rebuild_percent, stale) {
            (Some(pct), Some(built)) if self.state == "rebuilding" => {
                format!("rebuilding (v{built} → v{}) {pct:.0}%", self.version)
            }
            (Some(pct), None) if self.state == "rebuilding" => format!("rebuilding {pct:.0}%"),
            (_, Some(built)) => format!("{} (rows v{built})", self.state),
            _ => self.state.clone(),
        }
    }
}

/// The status of every projection.
pub async fn statuses(store: &Store) -> anyhow::Result<Vec<ProjectionStatus>> {
    let mut out = Vec::new();
    for projection in read_models::all() {
        out.push(status(store, projection.name(), projection.version()).await?);
    }
    Ok(out)
}

/// The status of projection `name`.
pub async fn status(store: &Store, name: &str, version: i32) -> anyhow::Result<ProjectionStatus> {
    let row = progress::status_row(store, name)
        .await?
        .map(|row| (row.state, row.owner, row.last_error));
    let rebuilt_to = rebuild_position(store, name).await?;
    let rebuilding = rebuilt_to.is_some();
    let rebuild_percent = match rebuilt_to {
        Some(position) => {
            let head = store.head_position().await?;
            Some(percent(position.max(0) as u64, head.max(0) as u64))
        }
        None => None,
    };
    let built_version = progress::built_version(store, name).await?;
    let skips = dead_letters::skips(store, name).await?;
    let dead_letters = progress::dead_letters(store, name).await?;
    let (stored_state, _, last_error): (String, Option<String>, Option<String>) =
        row.unwrap_or_else(|| ("idle".into(), None, None));
    // Read the checkpoints only after the state: a worker commits its checkpoint before it
    // records a state such as `stuck`, so a status never pairs a new state with an old position.
    // Split into segments: the lowest position, the largest lag, the owners of all.
    let segments = segment_statuses(store, name).await?;
    let position = segments.iter().map(|s| s.position).min().unwrap_or(0);
    let lag_events = segments.iter().map(|s| s.lag_events).max().unwrap_or(0);
    let lag_seconds = segments
        .iter()
        .filter_map(|s| s.lag_seconds)
        .max_by(f64::total_cmp);
    let held = segments.iter().any(|s| s.owner.is_some());
    let mut owners: Vec<&str> = segments.iter().filter_map(|s| s.owner.as_deref()).collect();
    owners.sort_unstable();
    owners.dedup();
    let owner = (!owners.is_empty()).then(|| owners.join(","));
    let state = if stored_state == "stuck" {
        "stuck"
    } else if rebuilding {
        "rebuilding"
    } else if !held {
        "stopped"
    } else if lag_events == 0 {
        "idle"
    } else {
        "running"
    };
    Ok(ProjectionStatus {
        name: name.to_string(),
        version,
        position,
        lag_events,
        lag_seconds,
        state: state.to_string(),
        owner,
        last_error,
        dead_letters,
        built_version,
        rebuild_percent,
        skips,
    })
}

/// One segment of a follower (see `eventstore_config::segments`), as `projections list` shows
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStatus {
    /// The follower's name.
    pub name: String,
    /// The segment's index.
    pub segment: u32,
    /// How many segments the follower has.
    pub segments: u32,
    /// The segment's checkpoint (and lease) name.
    pub checkpoint: String,
    /// The worker holding the segment's lease, if one does.
    pub owner: Option<String>,
    /// Global position of the segment's checkpoint.
    pub position: i64,
    /// Events after the segment's checkpoint (still to be read).
    pub lag_events: i64,
    /// Seconds since the oldest of them was recorded (None: no lag).
    pub lag_seconds: Option<f64>,
}

/// Every segment of follower `name` (one, its own checkpoint, when it is not split), in
/// segment order.
pub async fn segment_statuses(store: &Store, name: &str) -> anyhow::Result<Vec<SegmentStatus>> {
    let mut rows = followers::segment_checkpoints(store, name).await?;
    if rows.is_empty() {
        rows.push((name.to_string(), Checkpoint::START));
    }
    let mut out = Vec::new();
    for (checkpoint, cp) in rows {
        let (_, segment, segments) = parse_checkpoint_name(&checkpoint);
        let owner = if lease::is_held(store, &checkpoint).await? {
            progress::status_row(store, &checkpoint)
                .await?
                .and_then(|row| row.owner)
        } else {
            None
        };
        let (lag_events, oldest) = sql::events_after(store, cp).await?;
        let lag_seconds = oldest
            .map(|t: DateTime<Utc>| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
        out.push(SegmentStatus {
            name: name.to_string(),
            segment,
            segments,
            owner,
            position: cp.position,
            lag_events,
            lag_seconds,
            checkpoint,
        });
    }
    out.sort_by_key(|s| s.segment);
    Ok(out)
}
