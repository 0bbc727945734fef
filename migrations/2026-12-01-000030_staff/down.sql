DROP TABLE audit_log;
DROP FUNCTION passfold_audit_log_append_only();
DROP TABLE sign_in_failures;
DROP TABLE staff_invitations;
DROP TABLE staff_sessions;
DROP TABLE staff;
