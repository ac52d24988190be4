-- Undoes 0006.validate-context: the constraint goes back to NOT VALID, as
-- 0005.change-tracking left it.
-- squawk-ignore-file ban-drop-constraint

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_context_is_object;
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_context_is_object
    CHECK (pg_catalog.jsonb_typeof(context) = 'object') NOT VALID;
