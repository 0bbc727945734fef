-- The outbox is a queue: written by every change (100,000 rows for a template change
-- touching 100,000 passes) and deleted once delivered. Foreign-key checks and an index
-- nothing reads cost more there than they protect: rows always come from an existing
-- pass, and workers skip rows whose pass is gone.
ALTER TABLE outbox DROP CONSTRAINT outbox_merchant_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_pass_id_fkey;
DROP INDEX outbox_pass_idx;
