-- The order saga (see the PostgreSQL twin). Times are text '%Y-%m-%dT%H:%M:%S%.6fZ'.
CREATE TABLE order_sagas
(
    order_id       text    PRIMARY KEY,
    account_id     text    NOT NULL,
    correlation_id text    NOT NULL,
    step           text    NOT NULL,
    state          text    NOT NULL,
    last_position  integer NOT NULL,
    updated_at     text    NOT NULL
) STRICT;

CREATE TABLE order_saga_steps
(
    order_id        text    NOT NULL,
    global_position integer NOT NULL,
    event_type      text    NOT NULL,
    step            text    NOT NULL,
    commands        text    NOT NULL,
    recorded_at     text    NOT NULL,
    PRIMARY KEY (order_id, global_position)
) STRICT;

CREATE TABLE saga_deadlines
(
    order_id text PRIMARY KEY,
    due_at   text NOT NULL,
    done_at  text
) STRICT;
CREATE INDEX saga_deadlines_due ON saga_deadlines (due_at) WHERE done_at IS NULL;

-- "Every event of one business flow" (e.g. `eventshop orders trace`): look-ups by correlation id.
CREATE INDEX events_correlation ON events (json_extract(metadata, '$.correlation_id'));
