-- The cqrs-es / sqlite-es events table, plus the columns eventshop's global log needs.
-- Keep the composite PRIMARY KEY: sqlite-es maps only SQLITE_CONSTRAINT_PRIMARYKEY (1555) to an
-- optimistic-lock conflict.
CREATE TABLE events
(
    aggregate_type  text                          NOT NULL,
    aggregate_id    text                          NOT NULL,
    sequence        integer CHECK (sequence >= 0) NOT NULL,
    event_type      text                          NOT NULL,
    event_version   text                          NOT NULL,
    payload         text                          NOT NULL,
    metadata        text                          NOT NULL,
    global_position integer,
    recorded_at     text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

-- global_position is the insert's rowid, copied into a real column: a bare rowid of a table
-- without an INTEGER PRIMARY KEY may be renumbered by VACUUM. SQLite has one writer at a time,
-- so positions commit in order.
CREATE TRIGGER events_assign_global_position AFTER INSERT ON events
BEGIN
    UPDATE events SET global_position = NEW.rowid WHERE rowid = NEW.rowid;
END;

CREATE INDEX events_global_position ON events (global_position);
CREATE INDEX events_recorded_at ON events (recorded_at);

CREATE TABLE aggregate_snapshots
(
    aggregate_type   text    NOT NULL,
    aggregate_id     text    NOT NULL,
    version          integer NOT NULL CHECK (version > 0),
    payload          text    NOT NULL,
    last_recorded_at text    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
) STRICT;

CREATE TABLE projection_checkpoints
(
    name            text    PRIMARY KEY,
    transaction_id  text    NOT NULL DEFAULT '0',
    global_position integer NOT NULL DEFAULT 0,
    updated_at      text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE email_claims
(
    email      text PRIMARY KEY,
    account_id text NOT NULL,
    claimed_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
