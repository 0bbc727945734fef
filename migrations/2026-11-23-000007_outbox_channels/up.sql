-- Each change is delivered to Apple devices and to Google Wallet independently: one outbox
-- row per channel, claimed by its own worker, retried on its own.
ALTER TABLE outbox ADD COLUMN channel text NOT NULL DEFAULT 'apple' CHECK (channel IN ('apple', 'google'));
DROP INDEX outbox_available_idx;
CREATE INDEX outbox_channel_available_idx ON outbox (channel, available_at, id);
