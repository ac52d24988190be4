-- Undoes 0007.reading. The role goes only when nothing in the cluster still
-- refers to it, as in 0001's rollback.
-- squawk-ignore-file ban-drop-function, ban-drop-table

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

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

DROP POLICY blocks_tenant_reader ON audit.blocks;
DROP POLICY blocks_reader ON audit.blocks;
DROP POLICY audit_logs_tenant_reader ON audit.audit_logs;
DROP POLICY audit_logs_reader ON audit.audit_logs;
ALTER TABLE audit.blocks DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit.audit_logs DISABLE ROW LEVEL SECURITY;

DROP FUNCTION audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid);
DROP FUNCTION audit.history(text, uuid, integer, timestamptz, uuid);
DROP FUNCTION audit._page_problem(integer, timestamptz, uuid);
DROP FUNCTION audit.unpin_tenant(regrole, uuid);
DROP FUNCTION audit.pin_tenant(regrole, uuid);
DROP FUNCTION audit._pinned_companies();
DROP TABLE audit.tenant_logins;

REVOKE ALL ON audit.audit_logs, audit.blocks FROM audit_tenant_reader;
REVOKE ALL ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) FROM audit_tenant_reader;
REVOKE ALL ON SCHEMA audit FROM audit_tenant_reader;

DO $roles$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_shdepend d
        JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND r.rolname = 'audit_tenant_reader'
    ) THEN
        RAISE NOTICE 'role audit_tenant_reader kept: objects in this cluster still refer to it';
        RETURN;
    END IF;
    BEGIN
        DROP ROLE IF EXISTS audit_tenant_reader;
    EXCEPTION WHEN insufficient_privilege OR dependent_objects_still_exist THEN
        RAISE NOTICE 'role audit_tenant_reader kept: %', SQLERRM;
    END;
END
$roles$;
