-- The console's log filters, each a keyset page newest first (ORDER BY global_position DESC):
-- an index per filter, ending in the position, so a page reads only the rows it shows.
-- (Correlation ids: events_correlation; a few events each, sorted in memory.)
CREATE INDEX events_aggregate_type_position ON events (aggregate_type, global_position);
CREATE INDEX events_aggregate_id_position ON events (aggregate_id, global_position);
CREATE INDEX events_event_type_position ON events (event_type, global_position);
CREATE INDEX events_actor_position ON events (json_extract(metadata, '$.actor'), global_position);
