-- Every change of what a pass shows is announced, so each passfold process can drop the
-- signed bytes it keeps for that pass. NOTIFY is delivered at commit, never for a rollback.
CREATE FUNCTION passfold_notify_pass_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('passfold_pass_changed', NEW.id::text);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER passes_changed AFTER UPDATE ON passes
    FOR EACH ROW EXECUTE FUNCTION passfold_notify_pass_changed();

CREATE FUNCTION passfold_notify_template_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('passfold_template_changed', NEW.merchant_id::text || '/' || NEW.id);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER templates_changed AFTER UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION passfold_notify_template_changed();
