-- Back to 000023's passfold_redeem (no partial redemption, always stores the answer).
DROP FUNCTION passfold_redeem(uuid, text, text, bigint, boolean, uuid, text, bytea, text[]);

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
        RAISE unique_violation USING MESSAGE = 'passfold: idempotency key taken', CONSTRAINT = 'idempotency_keys_pkey';
    END IF;
    pass_id := v_pass;
    body := v_body;
    RETURN NEXT;
EXCEPTION WHEN lock_not_available THEN
    RAISE lock_not_available USING MESSAGE = SQLERRM, CONSTRAINT = 'passfold_lock_timeout';
END
$$ LANGUAGE plpgsql;
