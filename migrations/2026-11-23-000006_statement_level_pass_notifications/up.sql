-- One trigger call per statement rather than per row: a template change touching 100,000
-- passes sends one "everything changed" notice instead of 100,000, which listeners answer
-- by emptying their pass cache.
DROP TRIGGER passes_changed ON passes;
DROP FUNCTION passfold_notify_pass_changed();

CREATE FUNCTION passfold_notify_passes_changed() RETURNS trigger AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM changed_passes;
    IF n > 100 THEN
        PERFORM pg_notify('passfold_pass_changed', '*');
    ELSE
        PERFORM pg_notify('passfold_pass_changed', id::text) FROM changed_passes;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER passes_changed AFTER UPDATE ON passes
    REFERENCING NEW TABLE AS changed_passes
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_notify_passes_changed();
