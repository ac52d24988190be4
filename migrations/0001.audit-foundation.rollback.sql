-- Undoes 0001.audit-foundation: leaves no trace of the project in this
-- database. No CASCADE: should anything else have been put in schema audit,
-- the rollback stops rather than destroy it.
-- Dropping is what a rollback is for:
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-schema

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

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
