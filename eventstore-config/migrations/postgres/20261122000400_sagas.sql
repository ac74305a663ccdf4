-- The order saga (process manager, crate `projectors`, module `saga`): one state row per order,
-- a step history, and durable payment deadlines. Written in the same transaction as the saga's
-- checkpoint (`projection_checkpoints.name = 'saga:orders'`).
CREATE TABLE order_sagas
(
    order_id       text        PRIMARY KEY,
    account_id     text        NOT NULL,
    correlation_id text        NOT NULL,
    step           text        NOT NULL,
    state          json        NOT NULL,
    last_position  bigint      NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- What the saga saw and did, per order, in log order.
CREATE TABLE order_saga_steps
(
    order_id        text        NOT NULL,
    global_position bigint      NOT NULL,
    event_type      text        NOT NULL,
    step            text        NOT NULL,
    commands        json        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (order_id, global_position)
);

-- An order awaiting payment is canceled when its deadline passes (durable: survives restarts).
CREATE TABLE saga_deadlines
(
    order_id text        PRIMARY KEY,
    due_at   timestamptz NOT NULL,
    done_at  timestamptz
);
CREATE INDEX saga_deadlines_due ON saga_deadlines (due_at) WHERE done_at IS NULL;

-- "Every event of one business flow" (e.g. `eventshop orders trace`): look-ups by correlation id.
CREATE INDEX events_correlation ON events ((metadata ->> 'correlation_id'));
