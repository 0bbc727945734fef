DROP FUNCTION passfold_lock_member_state(uuid, uuid);
DROP TRIGGER members_webhook_updated ON members;
CREATE TRIGGER members_webhook_updated
    AFTER UPDATE OF name, email, phone, external_id, birth_month, birth_day, birth_year ON members
    FOR EACH ROW
    WHEN ((OLD.name, OLD.email, OLD.phone, OLD.external_id, OLD.birth_month, OLD.birth_day, OLD.birth_year)
          IS DISTINCT FROM
          (NEW.name, NEW.email, NEW.phone, NEW.external_id, NEW.birth_month, NEW.birth_day, NEW.birth_year))
    EXECUTE FUNCTION passfold_webhook_on_member('profile');
DROP TABLE member_consents;
CREATE OR REPLACE FUNCTION passfold_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE OR REPLACE FUNCTION passfold_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
DROP INDEX members_erased_idx;
ALTER TABLE members DROP COLUMN erased_at;
