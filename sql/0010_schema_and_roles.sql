-- The audit schema and the roles that use it.
--
-- Everything of the project lives in schema `audit`. Applications never own
-- anything here: they are granted one of the roles below.

CREATE SCHEMA audit;

COMMENT ON SCHEMA audit IS
    'Immutable audit log: entries are written only through audit.record_audit() and never changed or removed.';

-- Roles are cluster-wide, so another database of the same cluster may have
-- created them already; the inner blocks also absorb a concurrent creation.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_writer') THEN
        BEGIN
            CREATE ROLE audit_writer NOLOGIN;
            COMMENT ON ROLE audit_writer IS
                'May record audit entries through audit.record_audit(), and nothing else.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_reader') THEN
        BEGIN
            CREATE ROLE audit_reader NOLOGIN;
            COMMENT ON ROLE audit_reader IS
                'May read audit entries, and nothing else.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
    -- Added by 0007.reading.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_tenant_reader') THEN
        BEGIN
            CREATE ROLE audit_tenant_reader NOLOGIN;
            COMMENT ON ROLE audit_tenant_reader IS
                'May read the audit entries of the company in its transaction''s context, and nothing else.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
END
$roles$;
