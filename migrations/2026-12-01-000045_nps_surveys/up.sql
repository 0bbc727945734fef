-- NPS surveys (issue 16): a program's rule for inviting members to rate a purchase, the
-- invitations (one per chosen purchase, a link's secret each) and the answers (one per
-- invitation). Invitations and answers are facts: written once.

CREATE TABLE survey_rules (
    program_id uuid PRIMARY KEY REFERENCES programs (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    -- How long after a purchase the invitation goes.
    delay_minutes integer NOT NULL CHECK (delay_minutes BETWEEN 0 AND 43200),
    -- Share of purchases that invite (chosen by the purchase's id, so stable).
    share_percent smallint NOT NULL CHECK (share_percent BETWEEN 1 AND 100),
    -- At most one invitation per member in this many days.
    every_days integer NOT NULL CHECK (every_days BETWEEN 1 AND 3650),
    -- Purchases before the rule was set are never surveyed.
    since timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE survey_invitations (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    member_id uuid NOT NULL REFERENCES members (id),
    purchase_id uuid NOT NULL UNIQUE,
    -- SHA-256 of the survey link's secret; the secret itself is only on the pass.
    token_hash bytea NOT NULL UNIQUE,
    invited_at timestamptz NOT NULL,
    UNIQUE (merchant_id, id)
);
CREATE INDEX survey_invitations_member_idx ON survey_invitations (member_id, invited_at);

CREATE TABLE survey_answers (
    invitation_id uuid PRIMARY KEY REFERENCES survey_invitations (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    score smallint NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment text CHECK (char_length(comment) <= 1000),
    answered_at timestamptz NOT NULL
);
CREATE INDEX survey_answers_program_idx ON survey_answers (program_id, answered_at) INCLUDE (score);

CREATE TRIGGER survey_invitations_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON survey_invitations
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_append_only();
CREATE TRIGGER survey_answers_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON survey_answers
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_append_only();
