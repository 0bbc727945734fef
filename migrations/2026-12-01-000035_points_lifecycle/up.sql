-- Points that live and die (issue 15): earned points kept as lots with their own expiry,
-- purchases that can be returned, payments with points, birthdays and tier requalification.

-- A program's lifecycle rules (points_expire_days, expiry_reminders_days, point_value, ...),
-- checked by loyalty::Lifecycle when written, like `tiers` and `referral`.
ALTER TABLE programs ADD COLUMN lifecycle jsonb NOT NULL DEFAULT '{}';

-- 'purchase' becomes 'earn' (the activity types the contract names), and the new kinds.
ALTER TABLE point_activities DROP CONSTRAINT point_activities_type_check;
UPDATE point_activities SET type = 'earn' WHERE type = 'purchase';
ALTER TABLE point_activities ADD CONSTRAINT point_activities_type_check
    CHECK (type IN ('welcome', 'earn', 'spend', 'expire', 'refund', 'adjust', 'referral',
                    'birthday', 'campaign', 'import', 'tier'));
-- What the activity adds to the member's qualifying (lifetime) points: gains count, a
-- return takes back what its purchase earned; spending and expiry do not count. Tiers are
-- judged on its sum (all time, or over the program's tier window).
ALTER TABLE point_activities ADD COLUMN qualifying bigint NOT NULL DEFAULT 0;
UPDATE point_activities SET qualifying = greatest(delta, 0) WHERE type <> 'tier';
-- The purchase an 'earn' or 'refund' row belongs to; the lot an 'expire' row ended.
ALTER TABLE point_activities ADD COLUMN purchase_id uuid;
ALTER TABLE point_activities ADD COLUMN lot_id bigint;
CREATE UNIQUE INDEX point_activities_one_expiry_per_lot ON point_activities (lot_id)
    WHERE type = 'expire';
CREATE INDEX point_activities_member_seq_idx ON point_activities (member_id, seq);

ALTER TABLE members ADD COLUMN birth_month smallint CHECK (birth_month BETWEEN 1 AND 12);
ALTER TABLE members ADD COLUMN birth_day smallint CHECK (birth_day BETWEEN 1 AND 31);
ALTER TABLE members ADD COLUMN birth_year smallint CHECK (birth_year BETWEEN 1900 AND 2100);
ALTER TABLE members ADD CONSTRAINT members_birth_date_whole
    CHECK ((birth_month IS NULL) = (birth_day IS NULL) AND (birth_year IS NULL OR birth_month IS NOT NULL));
-- The year (in the program's time zone) whose birthday points were granted: once a year.
ALTER TABLE members ADD COLUMN birthday_year smallint;
-- Points a return should have taken back but the member had already spent: taken from
-- future earnings before they become spendable.
ALTER TABLE members ADD COLUMN points_owed bigint NOT NULL DEFAULT 0 CHECK (points_owed >= 0);
-- With a tier window: when the member's tier is next judged.
ALTER TABLE members ADD COLUMN tier_review_at timestamptz;
CREATE INDEX members_birthday_idx ON members (program_id, birth_month, birth_day)
    WHERE birth_month IS NOT NULL;
CREATE INDEX members_tier_review_idx ON members (tier_review_at) WHERE tier_review_at IS NOT NULL;

-- Earned points, one lot per gain; spending takes from the lot that expires first (then
-- the oldest). `remaining` only shrinks; an expired lot has its 'expire' activity.
CREATE TABLE point_lots (
    id bigint GENERATED ALWAYS AS IDENTITY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    member_id uuid NOT NULL REFERENCES members (id),
    activity_id uuid NOT NULL,
    earned_at timestamptz NOT NULL,
    expires_at timestamptz,
    points bigint NOT NULL CHECK (points > 0),
    remaining bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    expired boolean NOT NULL DEFAULT false,
    -- Reminder offsets (days before expiry) already sent for this lot.
    reminded integer[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (merchant_id, id),
    UNIQUE (id)
);
CREATE INDEX point_lots_open_idx ON point_lots (member_id, expires_at NULLS LAST, id)
    WHERE remaining > 0;
CREATE INDEX point_lots_due_idx ON point_lots (expires_at)
    WHERE remaining > 0 AND NOT expired AND expires_at IS NOT NULL;
ALTER TABLE point_lots SET (autovacuum_vacuum_threshold = 1000, autovacuum_analyze_threshold = 1000);

-- Points held before lots existed: one lot each, never expiring (when they were earned
-- is not known well enough to expire them fairly).
INSERT INTO point_lots (merchant_id, member_id, activity_id, earned_at, expires_at, points, remaining)
SELECT m.merchant_id, m.id, coalesce(
           (SELECT a.id FROM point_activities a WHERE a.member_id = m.id ORDER BY a.seq DESC LIMIT 1),
           gen_random_uuid()),
       m.updated_at, NULL, m.points, m.points
  FROM members m WHERE m.points > 0;

-- A purchase, so that it can be returned: what it earned, what was paid for it with
-- points (a points payment the till tied to it), and what has been returned so far.
CREATE TABLE purchases (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    member_id uuid NOT NULL REFERENCES members (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    points_earned bigint NOT NULL CHECK (points_earned >= 0),
    purchased_at timestamptz NOT NULL,
    -- The points payment (a 'spend' activity) made on this receipt, if the till gave it.
    redemption_id uuid UNIQUE,
    points_paid bigint NOT NULL DEFAULT 0 CHECK (points_paid >= 0),
    refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    points_taken_back bigint NOT NULL DEFAULT 0,
    points_given_back bigint NOT NULL DEFAULT 0,
    UNIQUE (merchant_id, id)
);
CREATE INDEX purchases_member_idx ON purchases (member_id, purchased_at);
-- Purchases recorded before this table existed cannot be returned through the API.
