-- Hardening, where privileges allow: event triggers that refuse DDL on the
-- objects of schema audit (ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER,
-- CREATE OR REPLACE FUNCTION, DROP TABLE, DROP SCHEMA ...), for every role.
--
-- Creating an event trigger needs a superuser, which managed PostgreSQL does
-- not give: there this step does nothing but raise a NOTICE, and
-- audit.verify() still reports any change to the protections. A DBA applying
-- a migration of this project lifts the refusal for that transaction with:
--     SET LOCAL audit.allow_ddl = on;
-- SQLSTATE AU003 (protected schema) is the project's own.
--
-- The function lives in a schema of its own, audit_guard: one in schema
-- audit would be dropped, event triggers and all, by DROP SCHEMA audit
-- CASCADE before it could refuse it.

DO $hardening$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        RAISE NOTICE 'audit: the DDL-refusing event triggers need a superuser to install; skipped. audit.verify() still reports changed protections.';
        RETURN;
    END IF;

    CREATE SCHEMA audit_guard;
    COMMENT ON SCHEMA audit_guard IS 'Event trigger function that protects schema audit from DDL.';
    REVOKE ALL ON SCHEMA audit_guard FROM PUBLIC;

    CREATE FUNCTION audit_guard.refuse_ddl()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
    AS $function$
    DECLARE
        target record;
    BEGIN
        IF pg_catalog.current_setting('audit.allow_ddl', true) = 'on' THEN
            RETURN;
        END IF;
        IF TG_EVENT = 'sql_drop' THEN
            SELECT o.object_identity, TG_TAG AS command INTO target
            FROM pg_catalog.pg_event_trigger_dropped_objects() o
            WHERE o.schema_name = 'audit' OR (o.object_type = 'schema' AND o.object_name = 'audit')
            LIMIT 1;
        ELSE
            -- Triggers, rules and policies have no schema of their own: their table's counts.
            SELECT c.object_identity, c.command_tag AS command INTO target
            FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.schema_name = 'audit'
               OR 'audit'::pg_catalog.regnamespace IN (
                   SELECT r.relnamespace FROM pg_catalog.pg_class r
                   WHERE r.oid IN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t
                                   WHERE c.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = c.objid
                                   UNION ALL
                                   SELECT w.ev_class FROM pg_catalog.pg_rewrite w
                                   WHERE c.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = c.objid
                                   UNION ALL
                                   SELECT o.polrelid FROM pg_catalog.pg_policy o
                                   WHERE c.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND o.oid = c.objid))
            LIMIT 1;
        END IF;
        IF target.object_identity IS NOT NULL THEN
            RAISE EXCEPTION '% on % is not allowed: schema audit is protected', target.command, target.object_identity
                USING ERRCODE = 'AU003',
                      HINT = 'A DBA applying a migration may SET LOCAL audit.allow_ddl = on first.';
        END IF;
    END;
    $function$;
    COMMENT ON FUNCTION audit_guard.refuse_ddl() IS
        'Event trigger function: refuses DDL on schema audit (SQLSTATE AU003) unless audit.allow_ddl is on.';
    REVOKE ALL ON FUNCTION audit_guard.refuse_ddl() FROM PUBLIC;

    CREATE EVENT TRIGGER audit_refuse_ddl ON ddl_command_end EXECUTE FUNCTION audit_guard.refuse_ddl();
    CREATE EVENT TRIGGER audit_refuse_drop ON sql_drop EXECUTE FUNCTION audit_guard.refuse_ddl();
    -- As the table triggers: replication sessions do not skip them either.
    ALTER EVENT TRIGGER audit_refuse_ddl ENABLE ALWAYS;
    ALTER EVENT TRIGGER audit_refuse_drop ENABLE ALWAYS;
    COMMENT ON EVENT TRIGGER audit_refuse_ddl IS
        'Refuses CREATE, ALTER (DISABLE TRIGGER included) and other DDL on schema audit; SET LOCAL audit.allow_ddl = on lifts it.';
    COMMENT ON EVENT TRIGGER audit_refuse_drop IS
        'Refuses DROP of anything in schema audit; SET LOCAL audit.allow_ddl = on lifts it.';
END
$hardening$;
