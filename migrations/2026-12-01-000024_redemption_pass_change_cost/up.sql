-- The redemption's pass change at the cost it had before migration 000019 (measured with
-- benches/redeem.sh: PostgreSQL spent about 1,150-1,370 us per redemption against
-- 790-840 us before; the same body run 3,000 times in one transaction took 360-520 us a call
-- against 140-230 us). Two things cost it, neither the commit-ordered time:
--
-- 1. passfold_enqueue was a LANGUAGE sql function. One that is not inlined (it inserts) is
--    parsed and planned again on every call in PostgreSQL 15; PL/pgSQL keeps its plans for
--    the session. Same arguments, same rows, same count returned.
CREATE OR REPLACE FUNCTION passfold_enqueue(
    p_merchants uuid[], p_passes uuid[], p_reason text, p_channels text[],
    p_created_at timestamptz, p_available_at timestamptz, p_attempts integer
) RETURNS integer AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO outbox (merchant_id, pass_id, reason, channel, created_at, available_at, attempts)
    SELECT m, p, p_reason, c, p_created_at, p_available_at, p_attempts
      FROM unnest(p_merchants, p_passes) AS t (m, p) CROSS JOIN unnest(p_channels) AS c;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$ LANGUAGE plpgsql;

-- 2. A gift card has one pass, but passfold_record_activity found it with an array
--    subquery and handed it to passfold_pass_changed, whose array update and aggregates
--    are made for a template's many passes. One card's pass changes here instead: the same
--    update tag and Last-Modified expression as passfold_pass_changed (keep the two
--    alike), and its outbox rows through passfold_enqueue, still their one writer.
CREATE FUNCTION passfold_gift_card_pass_changed(
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

CREATE OR REPLACE FUNCTION passfold_record_activity(
    p_id uuid, p_merchant uuid, p_card uuid, p_type text, p_amount bigint,
    p_balance_after bigint, p_refunds uuid, p_reason text, p_channels text[]
) RETURNS uuid AS $$
BEGIN
    INSERT INTO gift_card_activities (id, merchant_id, gift_card_id, type, amount, balance_after, refunds_activity_id, reason)
    VALUES (p_id, p_merchant, p_card, p_type, p_amount, p_balance_after, p_refunds, p_reason);
    RETURN passfold_gift_card_pass_changed(p_merchant, p_card, p_type, p_channels);
END
$$ LANGUAGE plpgsql;
