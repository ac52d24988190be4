-- Hardening, where privileges allow: event triggers that refuse DDL on the
-- objects of schema audit (ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER,
-- CREATE OR REPLACE FUNCTION, ALTER FUNCTION, new functions or overloads,
-- new policies, rules and triggers, changes of owner, DROP TABLE, DROP
-- SCHEMA ...) and tables that inherit from the log's, for every role.
--
-- Creating an event trigger needs a superuser, which managed PostgreSQL does
-- not give: there this step does nothing but raise a NOTICE, and
-- audit.verify() still reports any change to the protections. A DBA applying
-- a migration of this project lifts the refusal for that one transaction by
-- naming it:
--     DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- A value that names no transaction lifts nothing, so a plain SET, a
-- setting of the role or database, or `options=-c audit.allow_ddl=...` in a
-- connection string leaves every later transaction protected.
-- SQLSTATE AU003 (protected schema) is the project's own.
--
-- The function lives in a schema of its own, audit_guard: one in schema
-- audit would be dropped, event triggers and all, by DROP SCHEMA audit
-- CASCADE before it could refuse it. Applied again by a superuser, this
-- file replaces the function and keeps the event triggers.

DO $hardening$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'audit_guard') THEN
            RAISE NOTICE 'audit: the DDL-refusing event triggers were installed by a superuser, and only one can update them; left as they are.';
        ELSE
            RAISE NOTICE 'audit: the DDL-refusing event triggers need a superuser to install; skipped. audit.verify() still reports changed protections.';
        END IF;
        RETURN;
    END IF;

    CREATE SCHEMA IF NOT EXISTS audit_guard;
    COMMENT ON SCHEMA audit_guard IS 'Event trigger function that protects schema audit from DDL.';
    REVOKE ALL ON SCHEMA audit_guard FROM PUBLIC;

    -- It runs as whoever issues the DDL, for every DDL of the database.
    CREATE OR REPLACE FUNCTION audit_guard.refuse_ddl()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $function$
    DECLARE
        lift   pg_catalog.text := pg_catalog.current_setting('audit.allow_ddl', true);
        target pg_catalog.record;
    BEGIN
        IF lift OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()::pg_catalog.text THEN
            RETURN;
        END IF;
        IF TG_EVENT OPERATOR(pg_catalog.=) 'sql_drop' THEN
            SELECT o.object_identity, TG_TAG AS command INTO target
            FROM pg_catalog.pg_event_trigger_dropped_objects() o
            WHERE o.schema_name OPERATOR(pg_catalog.=) 'audit'
               OR (o.object_type OPERATOR(pg_catalog.=) 'schema' AND o.object_name OPERATOR(pg_catalog.=) 'audit')
            LIMIT 1;
        ELSE
            SELECT c.object_identity, c.command_tag AS command INTO target
            FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.schema_name OPERATOR(pg_catalog.=) 'audit'
               -- The schema itself (ALTER SCHEMA ... OWNER, RENAME), known by
               -- what it holds: after a rename, its name is another.
               OR (c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_class r
                               WHERE r.relnamespace OPERATOR(pg_catalog.=) c.objid
                                 AND r.relname OPERATOR(pg_catalog.=) 'audit_logs'))
               -- Triggers, rules and policies have no schema of their own: their table's counts.
               OR pg_catalog.to_regnamespace('audit') IN (
                   SELECT r.relnamespace FROM pg_catalog.pg_class r
                   WHERE r.oid IN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t
                                   WHERE c.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = c.objid
                                   UNION ALL
                                   SELECT w.ev_class FROM pg_catalog.pg_rewrite w
                                   WHERE c.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = c.objid
                                   UNION ALL
                                   SELECT o.polrelid FROM pg_catalog.pg_policy o
                                   WHERE c.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND o.oid = c.objid))
               -- A table of any schema that inherits from one of the log's
               -- (CREATE TABLE ... INHERITS, ALTER TABLE ... INHERIT): its rows
               -- would be read as the log's, with an id, time and txid of the
               -- inserter's choosing.
               OR (c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_inherits i
                               JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) i.inhparent
                               WHERE i.inhrelid OPERATOR(pg_catalog.=) c.objid
                                 AND p.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('audit')))
            LIMIT 1;
        END IF;
        IF target.object_identity IS NOT NULL THEN
            RAISE EXCEPTION '% on % is not allowed: schema audit is protected', target.command, target.object_identity
                USING ERRCODE = 'AU003',
                      HINT = 'A DBA applying a migration lifts this for its transaction with SELECT pg_catalog.set_config(''audit.allow_ddl'', pg_catalog.pg_current_xact_id()::text, true).';
        END IF;
    END;
    $function$;
    COMMENT ON FUNCTION audit_guard.refuse_ddl() IS
        'Event trigger function: refuses DDL on schema audit and tables inheriting from its tables (SQLSTATE AU003), unless audit.allow_ddl names the current transaction.';
    REVOKE ALL ON FUNCTION audit_guard.refuse_ddl() FROM PUBLIC;

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_refuse_ddl') THEN
        CREATE EVENT TRIGGER audit_refuse_ddl ON ddl_command_end EXECUTE FUNCTION audit_guard.refuse_ddl();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_refuse_drop') THEN
        CREATE EVENT TRIGGER audit_refuse_drop ON sql_drop EXECUTE FUNCTION audit_guard.refuse_ddl();
    END IF;
    -- As the table triggers: replication sessions do not skip them either.
    ALTER EVENT TRIGGER audit_refuse_ddl ENABLE ALWAYS;
    ALTER EVENT TRIGGER audit_refuse_drop ENABLE ALWAYS;
    COMMENT ON EVENT TRIGGER audit_refuse_ddl IS
        'Refuses CREATE, ALTER (DISABLE TRIGGER included) and other DDL on schema audit, and tables inheriting from its tables; lifted for one transaction by setting audit.allow_ddl to its id.';
    COMMENT ON EVENT TRIGGER audit_refuse_drop IS
        'Refuses DROP of anything in schema audit; lifted for one transaction by setting audit.allow_ddl to its id.';
END
$hardening$;
