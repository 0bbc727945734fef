-- Pass changes are announced to other processes' caches by the outbox delivery worker
-- (src/pass_cache.rs): a NOTIFY inside every writing transaction made PostgreSQL commit
-- them one at a time, each waiting for the previous one's WAL flush.
DROP TRIGGER passes_changed ON passes;
DROP FUNCTION passfold_notify_passes_changed();
