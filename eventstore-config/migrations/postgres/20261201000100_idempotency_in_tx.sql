-- Idempotency records now commit in the same transaction as the events of their request, with
-- the response: a row is never a bare claim any more. Claims left by the old scheme (status
-- NULL: a request that was running, or died, before the upgrade) are dropped, so that their
-- repeats run.
DELETE FROM idempotency_keys WHERE status IS NULL;
