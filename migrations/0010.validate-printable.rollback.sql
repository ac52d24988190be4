-- Undoes 0010.validate-printable: the constraints go back to NOT VALID, as
-- 0009.trust-boundary left them.
-- squawk-ignore-file ban-drop-constraint

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as audit_owner for this transaction only.
DO $take$
BEGIN
    IF NOT (CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000
                 THEN pg_catalog.pg_has_role(current_user, 'audit_owner', 'SET')
                 ELSE pg_catalog.pg_has_role(current_user, 'audit_owner', 'MEMBER') END) THEN
        EXECUTE pg_catalog.format('GRANT audit_owner TO %I', current_user);
        PERFORM pg_catalog.set_config('audit.owner_taken', 'on', true);
    END IF;
END $take$;
SET LOCAL ROLE audit_owner;

ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_details_printable;
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_details_printable
    CHECK (pg_catalog.octet_length(details::pg_catalog.text) <= 1048576) NOT VALID;
ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_context_printable;
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_context_printable
    CHECK (pg_catalog.octet_length(context::pg_catalog.text) <= 1048576) NOT VALID;

RESET ROLE;
DO $give$
BEGIN
    IF pg_catalog.current_setting('audit.owner_taken', true) = 'on' THEN
        EXECUTE pg_catalog.format('REVOKE audit_owner FROM %I', current_user);
    END IF;
END $give$;
