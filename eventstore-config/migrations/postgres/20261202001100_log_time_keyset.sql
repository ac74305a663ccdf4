-- The console's log filtered by a time range is a keyset page in (recorded_at, global_position)
-- order, newest first: one index walk from the range's end, however far in the past it lies.
-- It also serves everything the plain recorded_at index served.
CREATE INDEX events_recorded_at_position ON events (recorded_at, global_position);
DROP INDEX events_recorded_at;
