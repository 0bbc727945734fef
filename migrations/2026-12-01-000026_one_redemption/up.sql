-- One redemption (issue 13): passfold_redeem is the only code that takes money from a card
-- and its answer the only redemption answer. It now also takes a partial redemption
-- (p_allow_partial: what the card holds when it holds less, if anything), and with p_key
-- NULL it stores no idempotency record and only returns the answer: the slow path in Rust
-- runs it inside the idempotency wrapper, which stores the answer itself. Lock waits are
-- re-raised with the constraint name `passfold_lock_timeout`, as in 000023.

DROP FUNCTION passfold_redeem(uuid, text, text, bigint, uuid, text, bytea, text[]);

CREATE FUNCTION passfold_redeem(
    p_merchant uuid, p_gan text, p_currency text, p_amount bigint, p_allow_partial boolean,
    p_activity uuid, p_key text, p_fingerprint bytea, p_channels text[]
) RETURNS TABLE (pass_id uuid, body bytea) AS $$
DECLARE
    v_card uuid;
    v_balance bigint;
    v_taken bigint;
    v_pass uuid;
    v_body bytea;
BEGIN
    -- The common case: enough money, one conditional UPDATE.
    UPDATE gift_cards SET balance = balance - p_amount, updated_at = now()
     WHERE merchant_id = p_merchant AND gan = p_gan AND currency = p_currency
       AND state = 'active' AND balance >= p_amount
    RETURNING id, balance INTO v_card, v_balance;
    IF FOUND THEN
        v_taken := p_amount;
    ELSIF p_allow_partial THEN
        -- Whatever the card holds, under its row lock (a load may have raced in since).
        SELECT id, LEAST(balance, p_amount) INTO v_card, v_taken FROM gift_cards
         WHERE merchant_id = p_merchant AND gan = p_gan AND currency = p_currency
           AND state = 'active' AND balance > 0
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        UPDATE gift_cards SET balance = balance - v_taken, updated_at = now()
         WHERE id = v_card
        RETURNING balance INTO v_balance;
    ELSE
        RETURN;
    END IF;
    v_pass := passfold_record_activity(p_activity, p_merchant, v_card, 'redeem', -v_taken,
                                       v_balance, NULL, NULL, p_channels);
    v_body := convert_to(json_build_object('activity_id', p_activity, 'amount', v_taken,
        'balance', v_balance, 'currency', p_currency, 'state', 'active')::text, 'UTF8');
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (merchant_id, key, fingerprint, response_status, response_body, response_content_type)
        VALUES (p_merchant, p_key, p_fingerprint, 200, v_body, 'application/json')
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE unique_violation USING MESSAGE = 'passfold: idempotency key taken', CONSTRAINT = 'idempotency_keys_pkey';
        END IF;
    END IF;
    pass_id := v_pass;
    body := v_body;
    RETURN NEXT;
EXCEPTION WHEN lock_not_available THEN
    RAISE lock_not_available USING MESSAGE = SQLERRM, CONSTRAINT = 'passfold_lock_timeout';
END
$$ LANGUAGE plpgsql;
