-- Versioned projections: the version of the code whose fold built a projection's rows (NULL:
-- not recorded yet). A runner that starts with another version rebuilds the projection
-- blue/green and records the new version with the swap (projectors::versions).
ALTER TABLE projection_status ADD COLUMN built_version integer;

-- Managed dead letters: what a parked row is about beyond its event — for the order saga, the
-- order whose effects stopped (its later events wait behind it). NULL for projections.
ALTER TABLE projection_dead_letters ADD COLUMN subject text;
