-- On each Citus worker, beside the DDL guard of sql/0095_hardening.sql
-- (installed there unchanged, by audit_py.citus.distribute(), as a
-- superuser): who may pass it on a worker.
--
-- On a worker, schema audit changes only through Citus: the coordinator
-- sends the DDL it propagates (an owner changed for a shard move, ...), and
-- creates, copies and drops shards (moves, rebalancing, cleanup), through
-- its own connections as a superuser (the tables' owner while
-- audit_py.citus.move_company() moves them, the extension's owner for
-- cleanup). None of it can name a transaction of the worker in
-- audit.allow_ddl: the coordinator's lift names the coordinator's.
--
-- How Citus recognises its own connections (citus 13.0.5,
-- transaction/backend_data.c, DetermineCitusBackendType()): by
-- application_name alone, 'citus_internal gpid=<n>' or 'citus_rebalancer
-- gpid=<n>', which any client may set. So it proves nothing by itself, and
-- neither does a setting: here, only a superuser (current and session user
-- both, so that no superuser's SECURITY DEFINER function lends it) passes,
--   * on a connection Citus says is its own, or
--   * with audit.allow_ddl naming its transaction, as on the coordinator.
-- Anyone else is refused, whatever they set: their audit.allow_ddl is
-- cleared for the transaction before audit_guard.refuse_ddl() reads it. A
-- superuser can pass either way, or drop the triggers: the guard keeps out
-- accidents and every other role; a superuser's tampering is detected (the
-- verifiers), not prevented.
--
-- PostgreSQL fires the event triggers of one event in the order of their
-- names: audit_citus_* before audit_refuse_*.
DO $citus_guard$
BEGIN
    CREATE OR REPLACE FUNCTION audit_guard.citus_lift()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $function$
    BEGIN
        IF NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false)
           OR NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) session_user), false) THEN
            PERFORM pg_catalog.set_config('audit.allow_ddl', '', true);
        ELSIF pg_catalog.current_setting('application_name') OPERATOR(pg_catalog.~) '^citus_(internal|rebalancer) gpid=[1-9][0-9]*$' THEN
            PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::pg_catalog.text, true);
        END IF;
    END;
    $function$;
    COMMENT ON FUNCTION audit_guard.citus_lift() IS
        'Citus worker: before audit_guard.refuse_ddl(), lifts the guard for a superuser on a connection Citus says is its own, and clears audit.allow_ddl for any role that is not a superuser.';
    REVOKE ALL ON FUNCTION audit_guard.citus_lift() FROM PUBLIC;

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_citus_lift_ddl') THEN
        CREATE EVENT TRIGGER audit_citus_lift_ddl ON ddl_command_end EXECUTE FUNCTION audit_guard.citus_lift();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_citus_lift_drop') THEN
        CREATE EVENT TRIGGER audit_citus_lift_drop ON sql_drop EXECUTE FUNCTION audit_guard.citus_lift();
    END IF;
    -- Fired whenever the guard is: in replication sessions too.
    ALTER EVENT TRIGGER audit_citus_lift_ddl ENABLE ALWAYS;
    ALTER EVENT TRIGGER audit_citus_lift_drop ENABLE ALWAYS;
    COMMENT ON EVENT TRIGGER audit_citus_lift_ddl IS
        'Citus worker: decides, before audit_refuse_ddl, whether a DDL may lift the guard (audit_guard.citus_lift()).';
    COMMENT ON EVENT TRIGGER audit_citus_lift_drop IS
        'Citus worker: decides, before audit_refuse_drop, whether a DROP may lift the guard (audit_guard.citus_lift()).';
END
$citus_guard$;
