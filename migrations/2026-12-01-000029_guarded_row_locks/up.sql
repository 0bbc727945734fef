-- Movements that decide in Rust (load, refund, adjust, the general redemption, points)
-- take their row's lock first through these functions, so that a wait past lock_timeout
-- carries the constraint name Rust recognises (000023) and the till is told to retry,
-- instead of an error diesel cannot classify. Each call costs a subtransaction.
CREATE FUNCTION passfold_lock_gift_card(p_merchant uuid, p_card uuid) RETURNS boolean AS $$
BEGIN
    PERFORM 1 FROM gift_cards WHERE id = p_card AND merchant_id = p_merchant FOR UPDATE;
    RETURN FOUND;
EXCEPTION WHEN lock_not_available THEN
    RAISE lock_not_available USING MESSAGE = SQLERRM, CONSTRAINT = 'passfold_lock_timeout';
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION passfold_lock_member(p_merchant uuid, p_member uuid) RETURNS boolean AS $$
BEGIN
    PERFORM 1 FROM members WHERE id = p_member AND merchant_id = p_merchant FOR UPDATE;
    RETURN FOUND;
EXCEPTION WHEN lock_not_available THEN
    RAISE lock_not_available USING MESSAGE = SQLERRM, CONSTRAINT = 'passfold_lock_timeout';
END
$$ LANGUAGE plpgsql;
