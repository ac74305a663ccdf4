//! Export and import of the whole log as JSON lines (`eventshop events export|import`): how a
//! log moves between stores (SQLite → PostgreSQL and back) or is backed up.
//!
//! **The file.** One JSON object per line, each with one key naming its kind:
//! ```text
//! {"header":{"format":"eventshop-log","version":1,"form":"full","store":"SQLite","after":0,"exported_at":"…"}}
//! {"event":{"position":17,"aggregate_type":"wallet","aggregate_id":"…","version":3,
//!           "event_type":"FundsDeposited","event_version":"1","payload":{…},"metadata":{…},
//!           "recorded_at":"…"}}                       … one per event, in commit-safe order
//! {"key":{"account_id":"…","key":"…"}}             … one per account with a personal-data key
//! {"end":{"events":20000,"keys":120}}
//! ```
//! **Two forms.** The default export (`eventshop events export`) is the **public** form: each
//! payload is the event's public view (`domain::public`, upcast, personal fields opened or
//! `"[erased]"`), with no password hash, no token id and no key lines. It is for reading and
//! for other tools, and cannot be restored. The **full** form (`events export --full`) is a
//! backup, the one import takes:
//! payloads are exported **as stored**: personal fields stay sealed (`"pd1:…"`), and the keys
//! that open them follow the events, one line per account that still has one. An erased
//! account has no key, so its fields stay unreadable in the target too: erasure survives a
//! move. The file therefore holds what the database holds (keys and password hashes): treat
//! it like a database dump. The end line makes a file cut at a line boundary detectable.
//!
//! **Export** reads the log in keyset batches in commit-safe order (never the whole log in
//! memory) up to the head it saw when it started.
//!
//! **Import** goes into an EMPTY store of either kind, in ONE transaction: every line is
//! checked as it is read (well-formed; each aggregate's versions 1, 2, 3, … without a gap or a
//! repeat) and loaded in batched multi-row `INSERT`s; the first broken line rolls everything
//! back and is named in the error. Aggregates, versions, event types and versions, payloads,
//! metadata and recorded times are kept (times to the target's precision: milliseconds on
//! SQLite); global positions are renumbered in file order. With the events come the keys and
//! the e-mail claims (rebuilt from `AccountRegistered`, opened with those keys, digested with
//! the target's own index key), so a taken address stays taken. Read models are not part of
//! the file: rebuild them afterwards (`eventshop events import` does).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::email_registry;
use crate::log::transfer::{self as rows, RestoredRow, StoredRow};
use crate::log::{Checkpoint, ReadError, StoredEvent};
use crate::personal::{self, DataKey, StoredKey, ERASED};
use crate::store::Store;

/// The `format` of the header line.
pub const FORMAT: &str = "eventshop-log";
/// The version of the file format this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Events read per export batch.
const EXPORT_BATCH: u32 = 2_000;
/// Keys read per export batch.
const KEY_BATCH: u32 = 1_000;
/// How long an export waits for the events committed before it started to become readable
/// (the commit-safe reader holds them back behind a transaction still running on the server).
const HEAD_PATIENCE: Duration = Duration::from_secs(30);

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The first line: what the file is.
    Header(Header),
    /// One event.
    Event(ExportedEvent),
    /// One account's personal-data key.
    Key(StoredKey),
    /// The last line: how many events and keys precede it.
    End(End),
}

/// Which form an export has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Public views only (no secrets, no keys): for reading; cannot be imported.
    Public,
    /// The stored form with the personal-data keys: a backup that import restores.
    Full,
}

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format's version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Public or full.
    pub form: Form,
    /// The source store (`PostgreSQL` or `SQLite`).
    pub store: String,
    /// The position the export started after (0: the whole log).
    pub after: i64,
    /// When the export started.
    pub exported_at: DateTime<Utc>,
}

/// One event of an export: everything needed to restore it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedEvent {
    /// Its global position in the source (renumbered on import).
    pub position: i64,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after this event (1 for its first).
    pub version: u64,
    /// Event type.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The payload as stored (personal fields sealed).
    pub payload: Value,
    /// The metadata as stored.
    pub metadata: Value,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredRow> for ExportedEvent {
    fn from(row: StoredRow) -> Self {
        Self {
            position: row.global_position,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            version: row.sequence.max(0) as u64,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
        }
    }
}

/// The last line of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Event lines in the file.
    pub events: u64,
    /// Key lines in the file.
    pub keys: u64,
}

/// Why an export or import failed. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A line of the file is broken; nothing was imported.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The target store already holds events; nothing was imported.
    #[error("the target store is not empty (it holds {0} events): import needs an empty store")]
    NotEmpty(i64),
    /// The log's head did not become readable in time.
    #[error(
        "events up to position {0} did not become readable within {1:?} (a long transaction \
         is running on the database server?)"
    )]
    HeadNotReadable(i64, Duration),
    /// Reading the input or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An event has no public view (a public export stops before it).
    #[error("the event at position {position} has no public view: {reason}")]
    NoPublicView {
        /// Its global position.
        position: i64,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
    /// The log could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// Event lines.
    pub events: u64,
    /// Key lines.
    pub keys: u64,
}

/// Writes the log after global position `after` (0: all of it) to `out` as JSON lines in the
/// **full** form (stored payloads and the keys: a backup [`import`] restores).
pub async fn export_full(
    store: &Store,
    after: i64,
    out: &mut impl Write,
    progress: impl FnMut(u64),
) -> Result<Exported, TransferError> {
    export(store, after, Form::Full, out, progress).await
}

/// Writes the log after global position `after` (0: all of it) to `out` as JSON lines in the
/// **public** form: every payload is the event's public view (upcast; personal fields opened,
/// or `"[erased]"`), with no password hash, no token id and no keys. It cannot be imported.
pub async fn export_public(
    store: &Store,
    after: i64,
    out: &mut impl Write,
    progress: impl FnMut(u64),
) -> Result<Exported, TransferError> {
    export(store, after, Form::Public, out, progress).await
}

/// Writes the log after global position `after` (0: all of it) to `out` as JSON lines in
/// `form`, in commit-safe order, up to the head the store had when the export started (the
/// full form then adds the key lines). `progress` is called after every batch with the number
/// of events written so far.
pub async fn export(
    store: &Store,
    after: i64,
    form: Form,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<Exported, TransferError> {
    let head = store.head_position().await?;
    let mut checkpoint = store.checkpoint_at(after.max(0)).await?;
    write_line(
        out,
        &Line::Header(Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            form,
            store: store.kind_name().to_owned(),
            after: after.max(0),
            exported_at: Utc::now(),
        }),
    )?;
    let mut events = 0u64;
    let mut highest = after.max(0);
    let mut accounts: HashSet<String> = HashSet::new();
    let patience = Instant::now() + HEAD_PATIENCE;
    loop {
        let (batch, last) = read_batch(store, checkpoint, form).await?;
        let full = batch.len() == EXPORT_BATCH as usize;
        checkpoint = last.unwrap_or(checkpoint);
        for event in batch {
            highest = highest.max(event.position);
            if event.aggregate_type == "account" && !accounts.contains(&event.aggregate_id) {
                accounts.insert(event.aggregate_id.clone());
            }
            write_line(out, &Line::Event(event))?;
            events += 1;
        }
        progress(events);
        if full {
            continue;
        }
        if highest >= head {
            break;
        }
        if Instant::now() >= patience {
            return Err(TransferError::HeadNotReadable(head, HEAD_PATIENCE));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The keys that open the exported events' sealed fields (erased accounts have none).
    let mut keys = 0u64;
    let mut last = String::new();
    if form == Form::Full {
        loop {
            let page = personal::stored_keys_after(store, &last, KEY_BATCH).await?;
            let Some(end) = page.last() else { break };
            last = end.account_id.clone();
            for key in page {
                if accounts.contains(&key.account_id) {
                    write_line(out, &Line::Key(key))?;
                    keys += 1;
                }
            }
        }
    }
    write_line(out, &Line::End(End { events, keys }))?;
    out.flush()?;
    Ok(Exported { events, keys })
}

/// The next batch after `checkpoint` in `form`, and the checkpoint of its last event: the
/// stored rows (full), or the events as the log reader gives them (opened, upcast) in their
/// public view (public).
async fn read_batch(
    store: &Store,
    checkpoint: Checkpoint,
    form: Form,
) -> Result<(Vec<ExportedEvent>, Option<Checkpoint>), TransferError> {
    match form {
        Form::Full => {
            let rows = rows::stored_after(store, checkpoint, EXPORT_BATCH).await?;
            let last = rows.last().map(StoredRow::checkpoint);
            Ok((rows.into_iter().map(ExportedEvent::from).collect(), last))
        }
        Form::Public => {
            let events = store.read_after(checkpoint, EXPORT_BATCH).await?;
            let last = events.last().map(StoredEvent::checkpoint);
            let lines = events.iter().map(public_line).collect::<Result<_, _>>()?;
            Ok((lines, last))
        }
    }
}

/// An event line of the public form.
fn public_line(event: &StoredEvent) -> Result<ExportedEvent, TransferError> {
    let payload = event
        .public_view()
        .map_err(|e| TransferError::NoPublicView {
            position: event.position,
            reason: e.to_string(),
        })?;
    Ok(ExportedEvent {
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        event_version: domain::upcast::current_version_text(&event.event_type),
        payload,
        metadata: serde_json::to_value(&event.metadata).map_err(std::io::Error::from)?,
        recorded_at: event.recorded_at,
    })
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), TransferError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// What an import loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Events loaded (positions 1..=events in the target).
    pub events: u64,
    /// Personal-data keys loaded.
    pub keys: u64,
    /// E-mail claims rebuilt.
    pub claims: u64,
}

/// Where the reader of an import file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Before the header.
    Start,
    /// After the header: events.
    Events,
    /// After the first key line: keys only.
    Keys,
    /// After the end line: nothing more.
    Done,
}

/// An account's registration: its stored e-mail (sealed or not) and when it registered.
struct Registration {
    email: Value,
    at: DateTime<Utc>,
}

/// Loads an export file from `input` into `store`, which must hold no events, in one
/// transaction; any broken line (named by number), a non-empty target or a store failure
/// leaves the target unchanged. `progress` is called after every batch with the number of
/// events loaded so far.
pub async fn import(
    store: &Store,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Imported, TransferError> {
    let mut tx = store.begin().await?;
    let existing = rows::count(&mut tx).await?;
    if existing > 0 {
        return Err(TransferError::NotEmpty(existing));
    }
    let index_key = email_registry::index_key_in(&mut tx).await?;
    let mut section = Section::Start;
    let mut versions: HashMap<(String, String), u64> = HashMap::new();
    let mut registrations: HashMap<String, Registration> = HashMap::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut pending: Vec<RestoredRow> = Vec::with_capacity(rows::RESTORE_BATCH);
    let mut events = 0u64;
    let mut number = 0u64;
    for line in input.lines() {
        number += 1;
        let broken = |reason: String| TransferError::Line {
            line: number,
            reason,
        };
        let text = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => broken("not UTF-8 text".to_owned()),
            _ => TransferError::Io(e),
        })?;
        if section == Section::Done {
            return Err(broken("content after the end line".to_owned()));
        }
        let parsed: Line = serde_json::from_str(&text).map_err(|e| {
            broken(format!(
                "not a line of an eventshop export ({})",
                e.to_string().split(" at line").next().unwrap_or_default()
            ))
        })?;
        match (section, parsed) {
            (Section::Start, Line::Header(header)) => {
                check_header(&header).map_err(broken)?;
                section = Section::Events;
            }
            (Section::Start, _) => {
                return Err(broken(
                    "not an eventshop export: the first line is not its header".to_owned(),
                ))
            }
            (_, Line::Header(_)) => return Err(broken("a second header line".to_owned())),
            (Section::Events, Line::Event(event)) => {
                let row = check_event(&mut versions, event).map_err(broken)?;
                if row.aggregate_type == "account" && row.event_type == "AccountRegistered" {
                    if let Some(email) = row.payload.pointer("/data/email") {
                        registrations.insert(
                            row.aggregate_id.clone(),
                            Registration {
                                email: email.clone(),
                                at: row.recorded_at,
                            },
                        );
                    }
                }
                pending.push(row);
                events += 1;
                if pending.len() == rows::RESTORE_BATCH {
                    rows::restore(&pending).execute(&mut tx).await?;
                    pending.clear();
                    progress(events);
                }
            }
            (Section::Keys, Line::Event(_)) => {
                return Err(broken("an event line after the key lines".to_owned()))
            }
            (Section::Events | Section::Keys, Line::Key(key)) => {
                section = Section::Keys;
                if DataKey::from_stored(&key.key).is_none() {
                    return Err(broken(format!(
                        "the key of account {} is not 32 bytes of base64",
                        key.account_id
                    )));
                }
                if keys.insert(key.account_id.clone(), key.key).is_some() {
                    return Err(broken(format!(
                        "a second key for account {}",
                        key.account_id
                    )));
                }
            }
            (Section::Events | Section::Keys, Line::End(end)) => {
                let found = End {
                    events,
                    keys: keys.len() as u64,
                };
                if end != found {
                    return Err(broken(format!(
                        "the end line counts {} events and {} keys, the file holds {} and {}",
                        end.events, end.keys, found.events, found.keys
                    )));
                }
                section = Section::Done;
            }
            (Section::Done, _) => return Err(broken("content after the end line".to_owned())),
        }
    }
    if section != Section::Done {
        return Err(TransferError::Line {
            line: number + 1,
            reason: if number == 0 {
                "the input is empty: not an eventshop export".to_owned()
            } else {
                "the file ends before its end line (cut short?)".to_owned()
            },
        });
    }
    if !pending.is_empty() {
        rows::restore(&pending).execute(&mut tx).await?;
        progress(events);
    }
    let stored_keys: Vec<StoredKey> = keys
        .iter()
        .map(|(account_id, key)| StoredKey {
            account_id: account_id.clone(),
            key: key.clone(),
        })
        .collect();
    for chunk in stored_keys.chunks(personal::RESTORE_KEYS_BATCH) {
        personal::restore_keys(chunk).execute(&mut tx).await?;
    }
    let claims = claims(&registrations, &keys);
    for chunk in claims.chunks(email_registry::RESTORE_BATCH) {
        email_registry::restore_claims(&index_key, chunk)
            .execute(&mut tx)
            .await?;
    }
    // A writer that slipped in beside the import (the emptiness check does not lock) shows
    // here: refuse rather than mix two logs.
    let total = rows::count(&mut tx).await?;
    if total != events as i64 {
        return Err(TransferError::NotEmpty(total - events as i64));
    }
    tx.commit().await?;
    Ok(Imported {
        events,
        keys: stored_keys.len() as u64,
        claims: claims.len() as u64,
    })
}

fn check_header(header: &Header) -> Result<(), String> {
    if header.format != FORMAT {
        return Err(format!(
            "not an eventshop export (format '{}')",
            header.format
        ));
    }
    if header.version != FORMAT_VERSION {
        return Err(format!(
            "export format version {} is not {FORMAT_VERSION}, the one this binary reads",
            header.version
        ));
    }
    if header.form != Form::Full {
        return Err(
            "a public export (no stored payloads, no keys) cannot be restored: make a backup \
             with `eventshop events export --full`"
                .to_owned(),
        );
    }
    if header.after != 0 {
        return Err(format!(
            "a partial export (after position {}) cannot be imported into an empty store",
            header.after
        ));
    }
    Ok(())
}

/// The row an event line restores, after checking it follows its aggregate's previous
/// version.
fn check_event(
    versions: &mut HashMap<(String, String), u64>,
    event: ExportedEvent,
) -> Result<RestoredRow, String> {
    if event.aggregate_type.is_empty() || event.aggregate_id.is_empty() {
        return Err("an event without an aggregate type or id".to_owned());
    }
    if event.event_type.is_empty() {
        return Err("an event without an event type".to_owned());
    }
    if !event.payload.is_object() || !event.metadata.is_object() {
        return Err("an event whose payload or metadata is not a JSON object".to_owned());
    }
    let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
    let previous = versions.get(&key).copied().unwrap_or(0);
    if event.version != previous + 1 {
        let name = format!("{}/{}", event.aggregate_type, event.aggregate_id);
        return Err(if previous == 0 {
            format!(
                "aggregate {name} starts at version {} (expected 1)",
                event.version
            )
        } else {
            format!(
                "aggregate {name} version {} follows {previous}",
                event.version
            )
        });
    }
    versions.insert(key, event.version);
    Ok(RestoredRow {
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.version as i64,
        event_type: event.event_type,
        event_version: event.event_version,
        payload: event.payload,
        metadata: event.metadata,
        recorded_at: event.recorded_at,
    })
}

/// The e-mail claims of the imported accounts: every registration whose e-mail still opens
/// (an erased account's does not: its address is free, as it was in the source).
fn claims(
    registrations: &HashMap<String, Registration>,
    keys: &HashMap<String, String>,
) -> Vec<(domain::Email, String, DateTime<Utc>)> {
    let mut claims: Vec<_> = registrations
        .iter()
        .filter_map(|(account_id, registration)| {
            let key = keys.get(account_id).and_then(|k| DataKey::from_stored(k));
            let mut payload = serde_json::json!({"data": {"email": registration.email.clone()}});
            personal::open_payload(key.as_ref(), account_id, &mut payload).ok()?;
            let address = payload.pointer("/data/email")?.as_str()?;
            if address == ERASED {
                return None;
            }
            let email = domain::Email::parse(address).ok()?;
            Some((email, account_id.clone(), registration.at))
        })
        .collect();
    claims.sort_by(|a, b| a.1.cmp(&b.1));
    claims
}

/// A checkpoint-free count of what an export after `after` will hold, for a progress bar (an
/// estimate on PostgreSQL, whose positions may have gaps).
pub async fn estimate(store: &Store, after: i64) -> Result<u64, TransferError> {
    let head = store.head_position().await?;
    Ok((head - after.max(0)).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(aggregate_id: &str, version: u64) -> ExportedEvent {
        ExportedEvent {
            position: 7,
            aggregate_type: "wallet".to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version,
            event_type: "FundsDeposited".to_owned(),
            event_version: "1".to_owned(),
            payload: serde_json::json!({"type": "FundsDeposited", "data": {}}),
            metadata: serde_json::json!({"actor": "system"}),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn given_an_aggregate_when_its_versions_skip_or_repeat_then_the_line_says_which() {
        let mut versions = HashMap::new();
        assert_eq!(
            check_event(&mut versions, event("w", 2)).unwrap_err(),
            "aggregate wallet/w starts at version 2 (expected 1)"
        );
        check_event(&mut versions, event("w", 1)).unwrap();
        assert_eq!(
            check_event(&mut versions, event("w", 3)).unwrap_err(),
            "aggregate wallet/w version 3 follows 1"
        );
        assert_eq!(
            check_event(&mut versions, event("w", 1)).unwrap_err(),
            "aggregate wallet/w version 1 follows 1"
        );
        let row = check_event(&mut versions, event("w", 2)).unwrap();
        assert_eq!((row.aggregate_id.as_str(), row.sequence), ("w", 2));
        check_event(&mut versions, event("other", 1)).unwrap();
    }

    #[test]
    fn given_a_partial_public_or_foreign_header_when_checked_then_it_is_refused() {
        let header = Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            form: Form::Full,
            store: "SQLite".to_owned(),
            after: 0,
            exported_at: Utc::now(),
        };
        assert!(check_header(&header).is_ok());
        let partial = Header {
            after: 10,
            ..header.clone()
        };
        assert!(check_header(&partial)
            .unwrap_err()
            .contains("partial export"));
        let public = Header {
            form: Form::Public,
            ..header.clone()
        };
        assert!(check_header(&public).unwrap_err().contains("export --full"));
        let newer = Header {
            version: FORMAT_VERSION + 1,
            ..header.clone()
        };
        assert!(check_header(&newer).is_err());
        let foreign = Header {
            format: "other".to_owned(),
            ..header
        };
        assert!(check_header(&foreign).is_err());
    }

    #[test]
    fn each_line_names_its_kind_in_its_one_key() {
        let line = serde_json::to_value(Line::End(End { events: 2, keys: 1 })).unwrap();
        assert_eq!(line, serde_json::json!({"end": {"events": 2, "keys": 1}}));
        let key: Line = serde_json::from_str(r#"{"key":{"account_id":"a","key":"k"}}"#).unwrap();
        assert!(matches!(key, Line::Key(StoredKey { ref account_id, .. }) if account_id == "a"));
        assert!(serde_json::from_str::<Line>(r#"{"event":{"position":1}}"#).is_err());
        assert!(serde_json::from_str::<Line>(r#"{"other":{}}"#).is_err());
    }

    #[test]
    fn an_erased_registration_makes_no_claim_and_a_kept_one_does() {
        let kept = DataKey::generate();
        let at = Utc::now();
        let registrations = HashMap::from([
            (
                "kept".to_owned(),
                Registration {
                    email: Value::String(kept.seal("kept", "Ann@Example.com")),
                    at,
                },
            ),
            (
                "erased".to_owned(),
                Registration {
                    email: Value::String(DataKey::generate().seal("erased", "bob@example.com")),
                    at,
                },
            ),
            (
                "plain".to_owned(),
                Registration {
                    email: Value::String("carl@example.com".to_owned()),
                    at,
                },
            ),
        ]);
        let keys = HashMap::from([("kept".to_owned(), kept.to_stored())]);
        let claims = claims(&registrations, &keys);
        let found: Vec<(&str, &str)> = claims
            .iter()
            .map(|(email, id, _)| (email.as_str(), id.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![("ann@example.com", "kept"), ("carl@example.com", "plain")]
        );
    }
}
