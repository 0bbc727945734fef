DROP TRIGGER passes_changed ON passes;
DROP FUNCTION passfold_notify_passes_changed();

CREATE FUNCTION passfold_notify_pass_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('passfold_pass_changed', NEW.id::text);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER passes_changed AFTER UPDATE ON passes
    FOR EACH ROW EXECUTE FUNCTION passfold_notify_pass_changed();
