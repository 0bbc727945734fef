-- Every change of what a pass shows is announced, so each passmint process can drop the
-- signed bytes it keeps for that pass. NOTIFY is delivered at commit, never for a rollback.
CREATE FUNCTION passmint_notify_pass_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('passmint_pass_changed', NEW.id::text);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER passes_changed AFTER UPDATE ON passes
    FOR EACH ROW EXECUTE FUNCTION passmint_notify_pass_changed();

CREATE FUNCTION passmint_notify_template_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('passmint_template_changed', NEW.merchant_id::text || '/' || NEW.id);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER templates_changed AFTER UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION passmint_notify_template_changed();
