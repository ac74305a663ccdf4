-- The command API's durable state: Idempotency-Key records and generated secrets.

-- One row per (key, caller): claimed (status NULL) before the command runs, then completed with
-- the first response, which every repeat with the same request gets back.
CREATE TABLE idempotency_keys
(
    idempotency_key text        NOT NULL,
    subject         text        NOT NULL,
    request_hash    text        NOT NULL,
    status          integer,
    response_body   text,
    response_headers text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (idempotency_key, subject)
);

-- Secrets generated on first use (e.g. the development JWT signing key when none is configured),
-- shared by every process on the same database.
CREATE TABLE secrets
(
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
