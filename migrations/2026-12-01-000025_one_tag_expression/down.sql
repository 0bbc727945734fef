CREATE OR REPLACE FUNCTION passfold_pass_changed(p_passes uuid[], p_reason text, p_channels text[])
RETURNS uuid[] AS $$
DECLARE
    v_ids uuid[];
    v_merchants uuid[];
BEGIN
    WITH p AS (
        UPDATE passes
           SET update_tag = pg_current_xact_id()::text::bigint,
               updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')
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
       SET update_tag = pg_current_xact_id()::text::bigint,
           updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE gift_card_id = p_card AND merchant_id = p_merchant
    RETURNING id INTO v_pass;
    IF FOUND THEN
        PERFORM passfold_enqueue(ARRAY[p_merchant], ARRAY[v_pass], p_reason, p_channels,
                                 now(), now(), 0);
    END IF;
    RETURN v_pass;
END
$$ LANGUAGE plpgsql;

DROP FUNCTION passfold_new_modified(timestamptz);
DROP FUNCTION passfold_new_update_tag();
