DROP FUNCTION passfold_claim(text, integer, double precision, boolean);
DROP INDEX outbox_google_pass_idx;
ALTER TABLE outbox RESET (fillfactor);
ALTER TABLE outbox DROP COLUMN leased_until;
