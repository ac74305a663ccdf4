-- The registry of live follower workers (processes running projections, the saga, the relay):
-- one heartbeat row per process, so that segments are shared among the live ones. Owned by
-- eventstore_config::followers.
CREATE TABLE follower_workers
(
    owner        text        PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);
