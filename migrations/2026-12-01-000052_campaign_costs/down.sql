ALTER TABLE campaigns DROP COLUMN cost_per_message;
