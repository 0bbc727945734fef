CREATE OR REPLACE FUNCTION passfold_record_activity(
    p_id uuid, p_merchant uuid, p_card uuid, p_type text, p_amount bigint,
    p_balance_after bigint, p_refunds uuid, p_reason text, p_channels text[]
) RETURNS uuid AS $$
DECLARE
    v_pass uuid;
BEGIN
    INSERT INTO gift_card_activities (id, merchant_id, gift_card_id, type, amount, balance_after, refunds_activity_id, reason)
    VALUES (p_id, p_merchant, p_card, p_type, p_amount, p_balance_after, p_refunds, p_reason);
    UPDATE passes SET update_tag = pg_current_xact_id()::text::bigint,
                      updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')
     WHERE gift_card_id = p_card
    RETURNING id INTO v_pass;
    INSERT INTO outbox (merchant_id, pass_id, reason, channel)
    SELECT p_merchant, v_pass, p_type, c FROM unnest(p_channels) AS c;
    RETURN v_pass;
END
$$ LANGUAGE plpgsql;
DROP FUNCTION passfold_pass_changed(uuid[], text, text[]);
DROP FUNCTION passfold_enqueue(uuid[], uuid[], text, text[], timestamptz, timestamptz, integer);
