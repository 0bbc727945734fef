-- The latest message the merchant sent to a card: shown on the Apple pass's back (its
-- change message puts it on the lock screen) and added to the Google object.
ALTER TABLE passes ADD COLUMN message_header text CHECK (char_length(message_header) <= 100);
ALTER TABLE passes ADD COLUMN message_body text CHECK (char_length(message_body) <= 1000);
ALTER TABLE passes ADD COLUMN message_at timestamptz;
