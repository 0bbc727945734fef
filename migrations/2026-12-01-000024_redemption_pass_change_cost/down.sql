-- As migration 000019 left them.
CREATE OR REPLACE FUNCTION passfold_record_activity(
    p_id uuid, p_merchant uuid, p_card uuid, p_type text, p_amount bigint,
    p_balance_after bigint, p_refunds uuid, p_reason text, p_channels text[]
) RETURNS uuid AS $$
DECLARE
    v_pass uuid[];
BEGIN
    INSERT INTO gift_card_activities (id, merchant_id, gift_card_id, type, amount, balance_after, refunds_activity_id, reason)
    VALUES (p_id, p_merchant, p_card, p_type, p_amount, p_balance_after, p_refunds, p_reason);
    v_pass := passfold_pass_changed(
        ARRAY(SELECT id FROM passes WHERE gift_card_id = p_card AND merchant_id = p_merchant),
        p_type, p_channels);
    RETURN v_pass[1];
END
$$ LANGUAGE plpgsql;

DROP FUNCTION passfold_gift_card_pass_changed(uuid, uuid, text, text[]);

CREATE OR REPLACE FUNCTION passfold_enqueue(
    p_merchants uuid[], p_passes uuid[], p_reason text, p_channels text[],
    p_created_at timestamptz, p_available_at timestamptz, p_attempts integer
) RETURNS integer AS $$
    WITH rows AS (
        INSERT INTO outbox (merchant_id, pass_id, reason, channel, created_at, available_at, attempts)
        SELECT m, p, p_reason, c, p_created_at, p_available_at, p_attempts
          FROM unnest(p_merchants, p_passes) AS t (m, p) CROSS JOIN unnest(p_channels) AS c
        RETURNING 1
    )
    SELECT count(*)::integer FROM rows
$$ LANGUAGE sql;
