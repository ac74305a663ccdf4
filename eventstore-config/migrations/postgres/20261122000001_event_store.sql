-- The cqrs-es / postgres-es events table, plus the columns eventshop's global log needs.
-- postgres-es never names the extra columns in its INSERT, so their defaults fill them.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Commit-safe reading order: (transaction_id, global_position).
CREATE INDEX events_commit_order ON events (transaction_id, global_position);
-- Look-ups by position (audit, read-your-writes); never a uniqueness check, so an insert
-- conflict (23505) can only come from the primary key, which postgres-es maps to a conflict.
CREATE INDEX events_global_position ON events (global_position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- eventshop's own aggregate snapshots, written every N versions by the command bus and used to
-- bound folds (command loads and temporal reads). Several per aggregate: one per N versions.
CREATE TABLE aggregate_snapshots
(
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    version         bigint      NOT NULL CHECK (version > 0),
    payload         json        NOT NULL,
    last_recorded_at timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
);

-- Projection and saga checkpoints: the commit-safe pair of the last applied event.
CREATE TABLE projection_checkpoints
(
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Email uniqueness across accounts: a claim is taken before AccountRegistered is appended.
CREATE TABLE email_claims
(
    email      text        PRIMARY KEY,
    account_id text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
