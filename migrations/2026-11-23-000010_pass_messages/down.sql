ALTER TABLE passes DROP COLUMN message_at;
ALTER TABLE passes DROP COLUMN message_body;
ALTER TABLE passes DROP COLUMN message_header;
