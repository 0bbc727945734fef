-- A gift card imported without a GAN draws a new one, so its GAN cannot recognise it when
-- the same file is run again. The file's SHA-256 and the row's line can: such a card keeps
-- `<sha256>:<line>` as its import key, and a second run of the same bytes skips it.
ALTER TABLE imports ADD COLUMN sha256 text;
ALTER TABLE gift_cards ADD COLUMN import_key text;
CREATE UNIQUE INDEX gift_cards_import_key_idx ON gift_cards (merchant_id, import_key)
    WHERE import_key IS NOT NULL;
