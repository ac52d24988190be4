-- Validates the CHECK constraint that 0005.change-tracking added NOT VALID.
-- VALIDATE scans the log under a SHARE UPDATE EXCLUSIVE lock, which lets
-- writers go on; in 0005 the scan would have held their exclusive lock.
-- depends: 0005.change-tracking

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = 0;
SET LOCAL audit.allow_ddl = on;

ALTER TABLE audit.audit_logs VALIDATE CONSTRAINT audit_logs_context_is_object;
