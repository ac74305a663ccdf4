-- SQLite variant of the PostgreSQL migration of the same name (times are text
-- 'YYYY-MM-DDTHH:MM:SS.ffffffZ', fixed width, so text order is time order; booleans 0/1).
-- Read models built by the projectors (crate `projectors`), their status, leases and dead letters.
--
-- History: every read-model table whose rows change (rm_accounts, rm_products, rm_orders,
-- rm_wallets, rm_policies) IS its own history table. Each event that touches an entity inserts a
-- new row version and closes the previous one:
--   valid_from_position / valid_from : the event that produced this version (position, recorded_at)
--   valid_to_position   / valid_to   : the event that replaced it (NULL: the current version)
-- Current rows: `valid_to_position IS NULL` (unique partial index per entity).
-- As of time T: `valid_from <= T AND (valid_to IS NULL OR valid_to > T)`.
-- `last_position` is the position of the last event applied to the entity (a replayed event at or
-- below it is a no-op). Append-only tables (rm_wallet_transactions, rm_audit) are keyed by the
-- event's global position and inserted with ON CONFLICT DO NOTHING.

CREATE TABLE rm_accounts
(
    id                  text NOT NULL,
    email               text NOT NULL,
    name                text NOT NULL,
    role                text NOT NULL,
    deleted             integer NOT NULL,
    registered_at       text NOT NULL,
    last_login_at       text,
    deleted_at          text,
    version             integer NOT NULL,
    last_position       integer NOT NULL,
    valid_from_position integer NOT NULL,
    valid_to_position   integer,
    valid_from          text NOT NULL,
    valid_to            text,
    PRIMARY KEY (id, valid_from_position)
) STRICT;
CREATE UNIQUE INDEX rm_accounts_current ON rm_accounts (id) WHERE valid_to_position IS NULL;
CREATE INDEX rm_accounts_valid_from ON rm_accounts (valid_from);

CREATE TABLE rm_products
(
    id                  text NOT NULL,
    seller              text NOT NULL,
    name                text NOT NULL,
    description         text NOT NULL,
    price_amount        integer NOT NULL,
    price_currency      text NOT NULL,
    stock_on_hand       integer NOT NULL,
    stock_reserved      integer NOT NULL,
    stock_available     integer NOT NULL,
    version             integer NOT NULL,
    last_position       integer NOT NULL,
    valid_from_position integer NOT NULL,
    valid_to_position   integer,
    valid_from          text NOT NULL,
    valid_to            text,
    PRIMARY KEY (id, valid_from_position)
) STRICT;
CREATE UNIQUE INDEX rm_products_current ON rm_products (id) WHERE valid_to_position IS NULL;
CREATE INDEX rm_products_valid_from ON rm_products (valid_from);

CREATE TABLE rm_orders
(
    id                  text NOT NULL,
    account_id          text NOT NULL,
    status              text NOT NULL,
    currency            text NOT NULL,
    items               text NOT NULL,
    total_amount        integer NOT NULL,
    amount_due          integer,
    reason              text,
    placed_at           text NOT NULL,
    version             integer NOT NULL,
    last_position       integer NOT NULL,
    valid_from_position integer NOT NULL,
    valid_to_position   integer,
    valid_from          text NOT NULL,
    valid_to            text,
    PRIMARY KEY (id, valid_from_position)
) STRICT;
CREATE UNIQUE INDEX rm_orders_current ON rm_orders (id) WHERE valid_to_position IS NULL;
CREATE INDEX rm_orders_account ON rm_orders (account_id, valid_from);
CREATE INDEX rm_orders_valid_from ON rm_orders (valid_from);

CREATE TABLE rm_wallets
(
    account_id          text NOT NULL,
    currency            text NOT NULL,
    balance             integer NOT NULL,
    version             integer NOT NULL,
    last_position       integer NOT NULL,
    valid_from_position integer NOT NULL,
    valid_to_position   integer,
    valid_from          text NOT NULL,
    valid_to            text,
    PRIMARY KEY (account_id, valid_from_position)
) STRICT;
CREATE UNIQUE INDEX rm_wallets_current ON rm_wallets (account_id) WHERE valid_to_position IS NULL;
CREATE INDEX rm_wallets_valid_from ON rm_wallets (valid_from);

-- One row per money movement of a wallet (kind: deposit | capture | decline | refund).
CREATE TABLE rm_wallet_transactions
(
    global_position integer PRIMARY KEY,
    account_id      text NOT NULL,
    kind            text NOT NULL,
    order_id        text,
    amount          integer NOT NULL,
    currency        text NOT NULL,
    reason          text,
    recorded_at     text NOT NULL
) STRICT;
CREATE INDEX rm_wallet_transactions_account ON rm_wallet_transactions (account_id, global_position);

-- One row per subject: `policies` is a JSON array of the subject's policy strings, sorted.
CREATE TABLE rm_policies
(
    subject             text NOT NULL,
    policies            text NOT NULL,
    version             integer NOT NULL,
    last_position       integer NOT NULL,
    valid_from_position integer NOT NULL,
    valid_to_position   integer,
    valid_from          text NOT NULL,
    valid_to            text,
    PRIMARY KEY (subject, valid_from_position)
) STRICT;
CREATE UNIQUE INDEX rm_policies_current ON rm_policies (subject) WHERE valid_to_position IS NULL;
CREATE INDEX rm_policies_valid_from ON rm_policies (valid_from);

-- Audit index: one row per event ("who did what when").
CREATE TABLE rm_audit
(
    global_position integer PRIMARY KEY,
    event_type      text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    version         integer NOT NULL,
    actor           text,
    correlation_id  text,
    causation_id    text,
    request_id      text,
    recorded_at     text NOT NULL
) STRICT;
CREATE INDEX rm_audit_actor ON rm_audit (actor, recorded_at);
CREATE INDEX rm_audit_aggregate ON rm_audit (aggregate_type, aggregate_id, recorded_at);
CREATE INDEX rm_audit_correlation ON rm_audit (correlation_id);

-- What each projection is doing: idle | running | stuck | rebuilding; the owning process.
CREATE TABLE projection_status
(
    name             text PRIMARY KEY,
    version          integer NOT NULL DEFAULT 0,
    state            text NOT NULL DEFAULT 'idle',
    owner            text,
    lease_expires_at text,
    last_error       text,
    updated_at       text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Events a projection could not apply after its retries; the projection stops before them.
CREATE TABLE projection_dead_letters
(
    projection      text NOT NULL,
    global_position integer NOT NULL,
    transaction_id  text NOT NULL,
    event_type      text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL,
    parked_at       text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (projection, global_position)
) STRICT;

