-- Undoes 0001.audit-foundation: leaves no trace of the project in this
-- database. No CASCADE: should anything else have been put in schema audit,
-- the rollback stops rather than destroy it.
-- Dropping is what a rollback is for:
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-schema

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

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

DROP FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]);
DROP FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid);
DROP FUNCTION audit._entry_problem(uuid, text, text, uuid, jsonb);
DROP TABLE audit.audit_logs;
DROP FUNCTION audit._stamp_entry();
DROP FUNCTION audit._refuse_change();
DROP SCHEMA audit;

-- Roles are cluster-wide: drop each one only when nothing in any database of
-- the cluster still refers to it (pg_shdepend is shared across databases).
-- Where this role may not drop it (PostgreSQL 16+ wants ADMIN OPTION on it),
-- it is left in place with a NOTICE.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['audit_writer', 'audit_reader'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name);
        IF EXISTS (
            SELECT FROM pg_catalog.pg_shdepend d
            JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
            WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
              AND r.rolname = role_name
        ) THEN
            RAISE NOTICE 'role % kept: objects in this cluster still refer to it', role_name;
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE pg_catalog.format('DROP ROLE %I', role_name);
        EXCEPTION WHEN insufficient_privilege OR dependent_objects_still_exist THEN
            RAISE NOTICE 'role % kept: %', role_name, SQLERRM;
        END;
    END LOOP;
END
$roles$;
