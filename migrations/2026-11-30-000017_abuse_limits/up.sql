-- Bounds on what anyone may write without a key (issue 12), and on what a pos key may do.

-- Link opens are limited per client address: a keyed hash of the address (never the
-- address itself) is kept with each open, and old opens are pruned by age.
ALTER TABLE link_opens ADD COLUMN client bytea;
CREATE INDEX link_opens_client_idx ON link_opens (client, created_at) WHERE client IS NOT NULL;
CREATE INDEX link_opens_created_idx ON link_opens (created_at);

-- Device logs: an overall ceiling per window and pruning by age.
CREATE INDEX device_logs_created_idx ON device_logs (created_at);

-- Wrong PINs are counted per card number (known or not, so unknown numbers answer exactly
-- like known ones) and per card number and address.
ALTER TABLE pin_failures ADD COLUMN gan text;
UPDATE pin_failures f SET gan = g.gan FROM gift_cards g WHERE g.id = f.gift_card_id;
CREATE INDEX pin_failures_gan_idx ON pin_failures (gan, created_at);

-- What a pos key may do in one operation; admin keys are not bound by these.
ALTER TABLE programs ADD COLUMN pos_max_purchase bigint NOT NULL DEFAULT 100000;
ALTER TABLE programs ADD COLUMN pos_max_points_adjustment bigint NOT NULL DEFAULT 1000;
