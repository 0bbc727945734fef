-- Referrals: who brought whom, and whether the program's rule rewarded it.
-- status: pending (waiting for the referee's qualifying purchase), rewarded, or capped (the
-- referrer had reached the monthly cap: nobody earned), or no_rule (the program rewards no
-- referrals; the join is still attributed).
CREATE TABLE referrals (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    referrer_id uuid NOT NULL REFERENCES members (id),
    referee_id uuid NOT NULL UNIQUE REFERENCES members (id),
    status text NOT NULL CHECK (status IN ('pending', 'rewarded', 'capped', 'no_rule')),
    referrer_points bigint NOT NULL DEFAULT 0,
    referee_points bigint NOT NULL DEFAULT 0,
    first_purchase_at timestamptz,
    rewarded_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referrals_referrer_idx ON referrals (referrer_id, created_at);
CREATE INDEX referrals_program_idx ON referrals (program_id);

-- A reward is a ledger activity of its own, tied to the referral it pays: at most one per
-- member and referral, whatever retries happen.
ALTER TABLE point_activities ADD COLUMN referral_id uuid REFERENCES referrals (id);
CREATE UNIQUE INDEX point_activities_referral_idx ON point_activities (referral_id, member_id)
    WHERE referral_id IS NOT NULL;

-- Each program's public join link (no referrer): PASSFOLD_PUBLIC_URL/join/{join_code}.
ALTER TABLE programs ADD COLUMN join_code text UNIQUE;
UPDATE programs SET join_code = upper(substr(md5(id::text || random()::text), 1, 10));
ALTER TABLE programs ALTER COLUMN join_code SET NOT NULL;

-- Link opens, once per visitor: the visitor is a random cookie, stored only as a keyed hash.
CREATE TABLE link_opens (
    id bigserial PRIMARY KEY,
    program_id uuid NOT NULL REFERENCES programs (id),
    -- NULL for the program's own join link
    referrer_id uuid REFERENCES members (id),
    visitor bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX link_opens_once_idx ON link_opens
    (program_id, COALESCE(referrer_id, '00000000-0000-0000-0000-000000000000'::uuid), visitor);

-- Public join attempts per client address, for rate limiting.
CREATE TABLE join_attempts (
    id bigserial PRIMARY KEY,
    client text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX join_attempts_client_idx ON join_attempts (client, created_at);

-- Secrets this installation generates for itself (the CSRF and visitor-hash key).
CREATE TABLE site_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL
);
