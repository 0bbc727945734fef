-- The first answer to every POS mutation, stored in the same transaction as the mutation
-- itself, so a retry with the same key gets exactly that answer and nothing happens twice.
CREATE TABLE idempotency_keys (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    key text NOT NULL,
    -- SHA-256 of method, path and canonical JSON body
    fingerprint bytea NOT NULL,
    response_status smallint NOT NULL,
    response_body bytea NOT NULL,
    response_content_type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Pushes that must follow a change of a pass; delivered by the outbox worker.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    pass_id uuid NOT NULL REFERENCES passes (id),
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pass_idx ON outbox (pass_id);

-- Wrong PINs on the public balance check, for rate limiting per card and per address.
CREATE TABLE pin_failures (
    id bigserial PRIMARY KEY,
    gift_card_id uuid REFERENCES gift_cards (id),
    client text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pin_failures_card_idx ON pin_failures (gift_card_id, created_at);
CREATE INDEX pin_failures_client_idx ON pin_failures (client, created_at);

-- Loyalty ledger rows may be tied to the purchase that earned them.
ALTER TABLE point_activities ADD COLUMN tier_after text;

-- Ledger order: taken at insert, after the card's or member's row lock, so it follows the
-- order in which changes were applied (created_at is the transaction's start).
ALTER TABLE gift_card_activities ADD COLUMN seq bigserial;
ALTER TABLE point_activities ADD COLUMN seq bigserial;
