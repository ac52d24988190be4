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

-- BEGIN UNINSTALL CHECK (the same in every rollback: tests/test_uninstall.py)
-- Each rollback may be the first step of an uninstall that ends in 0001's,
-- which drops the log. So each step refuses, before it changes anything,
-- what any later step would destroy unasked or could not finish: a log with
-- entries needs audit.destroy_entries = on; tracking stops only by its
-- tables' owners; the guard's event triggers go only with a superuser.
DO $uninstall$
DECLARE
    tracked pg_catalog.regclass;
BEGIN
    IF pg_catalog.current_setting('audit.destroy_entries', true) IS DISTINCT FROM 'on'
       AND EXISTS (SELECT FROM audit.audit_logs) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations would destroy its entries'
            USING ERRCODE = 'AU009',
                  HINT = 'Export them first (audit-py export), then confirm with the setting audit.destroy_entries = on '
                         '(audit-py uninstall --destroy-entries, or PGOPTIONS=''-c audit.destroy_entries=on'' for yoyo).';
    END IF;
    IF pg_catalog.to_regprocedure('audit._track_changes()') IS NOT NULL THEN
        SELECT t.tgrelid::pg_catalog.regclass INTO tracked
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        WHERE t.tgfoid = pg_catalog.to_regprocedure('audit._track_changes()')
          AND NOT pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')
        LIMIT 1;
        IF tracked IS NOT NULL THEN
            RAISE EXCEPTION 'rolling back the audit log''s migrations stops tracking %, which this login does not own', tracked
                USING ERRCODE = 'AU009',
                      HINT = pg_catalog.format('Have its owner run SELECT audit.disable_tracking(%L) first.', tracked);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname IN ('audit_refuse_ddl', 'audit_refuse_drop'))
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations drops the DDL guard''s event triggers, which needs a superuser'
            USING ERRCODE = 'AU009';
    END IF;
END
$uninstall$;
-- END UNINSTALL CHECK

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
