DROP FUNCTION passfold_redeem(uuid, text, text, bigint, uuid, text, bytea, text[]);
DROP FUNCTION passfold_record_activity(uuid, uuid, uuid, text, bigint, bigint, uuid, text, text[]);
