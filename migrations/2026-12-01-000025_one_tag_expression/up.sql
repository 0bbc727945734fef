-- The update tag and Last-Modified of a changed pass, defined once. Both are plain SQL
-- expressions, so PostgreSQL inlines these functions into the statements that use them:
-- passfold_pass_changed (many passes) and passfold_gift_card_pass_changed (one card's pass).
--
-- The tag is the changing transaction's id, so a phone's "changed since" compares in commit
-- order; Last-Modified is the time the row is written, never before the previous version's.
CREATE FUNCTION passfold_new_update_tag() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ SELECT pg_current_xact_id()::text::bigint $$;

CREATE FUNCTION passfold_new_modified(p_previous timestamptz) RETURNS timestamptz
    LANGUAGE sql VOLATILE
    AS $$ SELECT GREATEST(clock_timestamp(), p_previous + interval '1 microsecond') $$;

CREATE OR REPLACE FUNCTION passfold_pass_changed(p_passes uuid[], p_reason text, p_channels text[])
RETURNS uuid[] AS $$
DECLARE
    v_ids uuid[];
    v_merchants uuid[];
BEGIN
    WITH p AS (
        UPDATE passes
           SET update_tag = passfold_new_update_tag(),
               updated_at = passfold_new_modified(updated_at)
         WHERE id = ANY (p_passes)
        RETURNING id, merchant_id
    )
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(merchant_id), '{}')
      INTO v_ids, v_merchants FROM p;
    PERFORM passfold_enqueue(v_merchants, v_ids, p_reason, p_channels, now(), now(), 0);
    RETURN v_ids;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION passfold_gift_card_pass_changed(
    p_merchant uuid, p_card uuid, p_reason text, p_channels text[]
) RETURNS uuid AS $$
DECLARE
    v_pass uuid;
BEGIN
    UPDATE passes
       SET update_tag = passfold_new_update_tag(),
           updated_at = passfold_new_modified(updated_at)
     WHERE gift_card_id = p_card AND merchant_id = p_merchant
    RETURNING id INTO v_pass;
    IF FOUND THEN
        PERFORM passfold_enqueue(ARRAY[p_merchant], ARRAY[v_pass], p_reason, p_channels,
                                 now(), now(), 0);
    END IF;
    RETURN v_pass;
END
$$ LANGUAGE plpgsql;
