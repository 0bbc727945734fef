DROP INDEX outbox_channel_available_idx;
CREATE INDEX outbox_available_idx ON outbox (available_at, id);
ALTER TABLE outbox DROP COLUMN channel;
