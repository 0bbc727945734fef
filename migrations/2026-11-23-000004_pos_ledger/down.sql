ALTER TABLE point_activities DROP COLUMN seq;
ALTER TABLE gift_card_activities DROP COLUMN seq;
ALTER TABLE point_activities DROP COLUMN tier_after;
DROP TABLE pin_failures;
DROP TABLE outbox;
DROP TABLE idempotency_keys;
