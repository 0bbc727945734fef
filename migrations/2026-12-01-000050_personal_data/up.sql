-- Personal data (issue 17): consents recorded with time and source, and the erasure of a
-- member (their details wiped, their ledger kept).

-- When a member's personal data was erased; null while they are a member like any other.
ALTER TABLE members ADD COLUMN erased_at timestamptz;
-- The erased members, for the pruning of their device registrations.
CREATE INDEX members_erased_idx ON members (erased_at) WHERE erased_at IS NOT NULL;

-- Facts, append-only: what a member agreed to (or withdrew), when, and through what.
CREATE TABLE member_consents (
    id bigint GENERATED ALWAYS AS IDENTITY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    member_id uuid NOT NULL REFERENCES members (id),
    kind text NOT NULL CHECK (kind IN ('terms', 'marketing_push', 'marketing_email')),
    granted boolean NOT NULL,
    source text NOT NULL CHECK (source IN ('join_page', 'pos', 'api', 'import', 'console')),
    at timestamptz NOT NULL,
    -- What a public page was sent from (the client address as rate limits see it, and the
    -- browser's User-Agent, at most 512 characters); null for the API and imports.
    ip text,
    user_agent text CHECK (char_length(user_agent) <= 512),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX member_consents_member_idx ON member_consents (member_id, id);

-- Append-only tables may be rewritten by an erasure alone: the transaction that erases a
-- member says so with `SET LOCAL passfold.erasure = 'on'`, and may then UPDATE (wipe text
-- in place); DELETE and TRUNCATE stay refused.
CREATE OR REPLACE FUNCTION passfold_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('passfold.erasure', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;

CREATE OR REPLACE FUNCTION passfold_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('passfold.erasure', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;

CREATE TRIGGER member_consents_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON member_consents
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_append_only();

-- An erasure is announced by `member.erased` (ids only), not by a `member.updated`
-- carrying the wiped fields.
DROP TRIGGER members_webhook_updated ON members;
CREATE TRIGGER members_webhook_updated
    AFTER UPDATE OF name, email, phone, external_id, birth_month, birth_day, birth_year ON members
    FOR EACH ROW
    WHEN ((OLD.name, OLD.email, OLD.phone, OLD.external_id, OLD.birth_month, OLD.birth_day, OLD.birth_year)
          IS DISTINCT FROM
          (NEW.name, NEW.email, NEW.phone, NEW.external_id, NEW.birth_month, NEW.birth_day, NEW.birth_year)
          AND NEW.erased_at IS NULL)
    EXECUTE FUNCTION passfold_webhook_on_member('profile');

-- The member's row lock (as 000029's `passfold_lock_member`), telling an erased member
-- apart in the same round trip: 'live', 'erased', or 'missing'.
CREATE FUNCTION passfold_lock_member_state(p_merchant uuid, p_member uuid) RETURNS text AS $$
DECLARE
    v_erased timestamptz;
BEGIN
    SELECT erased_at INTO v_erased FROM members
     WHERE id = p_member AND merchant_id = p_merchant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    RETURN CASE WHEN v_erased IS NULL THEN 'live' ELSE 'erased' END;
EXCEPTION WHEN lock_not_available THEN
    RAISE lock_not_available USING MESSAGE = SQLERRM, CONSTRAINT = 'passfold_lock_timeout';
END
$$ LANGUAGE plpgsql;
