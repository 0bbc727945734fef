DROP INDEX outbox_available_idx;
ALTER TABLE outbox DROP COLUMN attempts;
ALTER TABLE outbox DROP COLUMN available_at;
ALTER TABLE passes ALTER COLUMN update_tag SET DEFAULT nextval('pass_update_tag_seq');
DROP TABLE device_logs;
DROP TABLE registrations;
DROP TABLE devices;
