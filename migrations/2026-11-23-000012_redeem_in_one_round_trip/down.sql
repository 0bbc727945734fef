DROP FUNCTION passmint_redeem(uuid, text, text, bigint, uuid, text, bytea, text[]);
DROP FUNCTION passmint_record_activity(uuid, uuid, uuid, text, bigint, bigint, uuid, text, text[]);
