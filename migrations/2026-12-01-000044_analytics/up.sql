-- Loyalty analytics (issue 16): receipts of customers who are not members, for the share
-- of revenue that comes from members (SoR), and indexes that let the analytics read a
-- range of time per table in one pass instead of every row of the merchant.

-- A till's receipt of a customer without a card. A fact: written once, never changed.
CREATE TABLE non_member_receipts (
    id uuid NOT NULL,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    purchased_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX non_member_receipts_program_idx
    ON non_member_receipts (program_id, purchased_at) INCLUDE (amount, currency);
CREATE TRIGGER non_member_receipts_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON non_member_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_append_only();

-- A program's purchases and points movements of a range of time, read by index only.
CREATE INDEX purchases_merchant_time_idx
    ON purchases (merchant_id, purchased_at) INCLUDE (member_id, amount, refunded_amount);
CREATE INDEX point_activities_merchant_time_idx
    ON point_activities (merchant_id, created_at) INCLUDE (member_id, type, delta);
-- Sign-ups per period.
CREATE INDEX members_program_created_idx ON members (program_id, created_at);
