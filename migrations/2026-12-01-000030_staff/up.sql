-- The merchant console (issue 14): people who sign in with an email and a password, their
-- sessions, invitations to join a merchant's staff, failed sign-ins (rate limits), and an
-- append-only audit log of what they did.

CREATE TABLE staff (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    -- Lower-cased by the domain type; one account per email and merchant.
    email text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    role text NOT NULL CHECK (role IN ('owner', 'designer', 'cashier')),
    password_hash text NOT NULL,
    language text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'ru')),
    created_at timestamptz NOT NULL,
    last_sign_in_at timestamptz,
    UNIQUE (merchant_id, email)
);
CREATE INDEX staff_email_idx ON staff (email);

-- Only a SHA-256 hash of the cookie's token is kept; times come from the service's clock.
CREATE TABLE staff_sessions (
    token_hash bytea PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    staff_id uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX staff_sessions_staff_idx ON staff_sessions (merchant_id, staff_id);

CREATE TABLE staff_invitations (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    email text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    role text NOT NULL CHECK (role IN ('owner', 'designer', 'cashier')),
    token_hash bytea NOT NULL UNIQUE,
    invited_by uuid REFERENCES staff (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz
);
CREATE INDEX staff_invitations_merchant_idx ON staff_invitations (merchant_id, created_at);

-- Wrong passwords, counted like wrong gift-card PINs (pin_failures): per email and client
-- address, per email, per address; emails with no account count alike.
CREATE TABLE sign_in_failures (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    client text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email, created_at);
CREATE INDEX sign_in_failures_client_idx ON sign_in_failures (client, created_at);

-- One line per thing a person did in the console. Staff ids are kept without a foreign
-- key: the line outlives the account it names.
CREATE TABLE audit_log (
    id bigserial,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    staff_id uuid,
    action text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 64),
    details jsonb NOT NULL DEFAULT '{}',
    client text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, id)
);

-- Append-only: facts are never rewritten.
CREATE FUNCTION passfold_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION passfold_audit_log_append_only();
