-- Ownership: no login owns the log.
--
-- The login that installs the log (the database owner on Neon or RDS) builds
-- it, then hands it over: schema, tables and views to audit_owner, the
-- SECURITY DEFINER functions to audit_definer, so that they run with the few
-- rights 0090_grants.sql gives that role, never with the installing login's
-- (CREATEROLE on a managed server) or a superuser's. Neither role logs in or
-- is held by any login. The installing login keeps audit_admin (seal, pin
-- tenants, strict mode) and nothing else: ALTER, DROP, DISABLE TRIGGER,
-- CREATE POLICY or CREATE OR REPLACE FUNCTION on the log, as a schema tool
-- run with its credentials would issue them, are refused with "must be
-- owner". Handing over an object needs the right to act as the new owner:
-- the login holds both roles for this transaction only.

DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;

DO $ownership$
DECLARE
    installer  name := current_user;
    is_super   boolean := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
    taken      name[] := '{}';
    role_name  name;
    function_  pg_catalog.regprocedure;
    new_owner  name;
    relation   pg_catalog.regclass;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['audit_owner', 'audit_definer']::name[] LOOP
        -- From PostgreSQL 16 on, the role's creator is a member that may not SET it.
        IF NOT (CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000
                     THEN pg_catalog.pg_has_role(installer, role_name, 'SET')
                     ELSE pg_catalog.pg_has_role(installer, role_name, 'MEMBER') END) THEN
            EXECUTE pg_catalog.format('GRANT %I TO %I', role_name, installer);
            taken := taken || role_name;
        END IF;
    END LOOP;

    ALTER SCHEMA audit OWNER TO audit_owner;
    FOR relation IN
        SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND c.relkind IN ('r', 'v')
        ORDER BY c.oid
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO audit_owner', relation);
    END LOOP;
    FOR relation IN
        SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND c.relkind = 'c'
        ORDER BY c.oid
    LOOP
        EXECUTE pg_catalog.format('ALTER TYPE %s OWNER TO audit_owner', relation);
    END LOOP;
    -- A function's new owner needs CREATE on its schema, which audit_definer
    -- holds only while it takes its functions over.
    GRANT CREATE ON SCHEMA audit TO audit_definer;
    FOR function_, new_owner IN
        SELECT p.oid::pg_catalog.regprocedure,
               CASE WHEN p.prosecdef THEN 'audit_definer' ELSE 'audit_owner' END
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace
        ORDER BY p.oid
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', function_, new_owner);
    END LOOP;
    REVOKE CREATE ON SCHEMA audit FROM audit_definer;

    IF NOT is_super THEN
        EXECUTE pg_catalog.format('GRANT audit_admin TO %I', installer);
    END IF;
    FOREACH role_name IN ARRAY taken LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, installer);
    END LOOP;
END
$ownership$;
