-- Undoes 0007.reading. The role goes only when nothing in the cluster still
-- refers to it, as in 0001's rollback.
-- squawk-ignore-file ban-drop-function, ban-drop-table

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

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
