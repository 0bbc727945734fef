DROP FUNCTION passfold_lock_member(uuid, uuid);
DROP FUNCTION passfold_lock_gift_card(uuid, uuid);
