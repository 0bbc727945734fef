-- A gift-card movement's bookkeeping (activity, the pass's new version, its outbox rows) as
-- one function, so the Rust side and the one-round-trip redemption below share it.
CREATE FUNCTION passfold_record_activity(
    p_id uuid, p_merchant uuid, p_card uuid, p_type text, p_amount bigint,
    p_balance_after bigint, p_refunds uuid, p_reason text, p_channels text[]
) RETURNS uuid AS $$
DECLARE
    v_pass uuid;
BEGIN
    INSERT INTO gift_card_activities (id, merchant_id, gift_card_id, type, amount, balance_after, refunds_activity_id, reason)
    VALUES (p_id, p_merchant, p_card, p_type, p_amount, p_balance_after, p_refunds, p_reason);
    UPDATE passes SET update_tag = pg_current_xact_id()::text::bigint, updated_at = now()
     WHERE gift_card_id = p_card
    RETURNING id INTO v_pass;
    INSERT INTO outbox (merchant_id, pass_id, reason, channel)
    SELECT p_merchant, v_pass, p_type, c FROM unnest(p_channels) AS c;
    RETURN v_pass;
END
$$ LANGUAGE plpgsql;

-- The common redemption (an active card in the right currency with enough money) in one
-- statement, so one round trip and plans cached by PL/pgSQL: the balance, the activity, the
-- pass, the outbox and the stored answer commit together or not at all. No row back means
-- the card did not qualify and nothing was written: the caller takes the general path,
-- which explains why. A key already stored raises PM001 and rolls everything back.
CREATE FUNCTION passfold_redeem(
    p_merchant uuid, p_gan text, p_currency text, p_amount bigint, p_activity uuid,
    p_key text, p_fingerprint bytea, p_channels text[]
) RETURNS TABLE (pass_id uuid, body bytea) AS $$
DECLARE
    v_card uuid;
    v_balance bigint;
    v_pass uuid;
    v_body bytea;
BEGIN
    UPDATE gift_cards SET balance = balance - p_amount, updated_at = now()
     WHERE merchant_id = p_merchant AND gan = p_gan AND currency = p_currency
       AND state = 'active' AND balance >= p_amount
    RETURNING id, balance INTO v_card, v_balance;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_pass := passfold_record_activity(p_activity, p_merchant, v_card, 'redeem', -p_amount,
                                       v_balance, NULL, NULL, p_channels);
    v_body := convert_to(json_build_object('activity_id', p_activity, 'amount', p_amount,
        'balance', v_balance, 'currency', p_currency, 'state', 'active')::text, 'UTF8');
    INSERT INTO idempotency_keys (merchant_id, key, fingerprint, response_status, response_body, response_content_type)
    VALUES (p_merchant, p_key, p_fingerprint, 200, v_body, 'application/json')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'passfold: idempotency key taken' USING ERRCODE = 'PM001';
    END IF;
    pass_id := v_pass;
    body := v_body;
    RETURN NEXT;
END
$$ LANGUAGE plpgsql;
