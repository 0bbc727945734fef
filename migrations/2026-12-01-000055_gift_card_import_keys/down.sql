DROP INDEX gift_cards_import_key_idx;
ALTER TABLE gift_cards DROP COLUMN import_key;
ALTER TABLE imports DROP COLUMN sha256;
