-- The audit schema and the roles that use it.
--
-- Everything of the project lives in schema `audit`. Applications never own
-- anything here: they are granted one of the roles below. No login owns
-- anything either (0098_ownership.sql): the objects belong to audit_owner,
-- the SECURITY DEFINER functions to audit_definer, two NOLOGIN roles that no
-- login holds. The login that installs the log (neondb_owner, the RDS master
-- user) keeps no right over it beyond audit_admin, so a schema tool run as
-- that login (drizzle-kit push, Alembic autogenerate) cannot alter or drop it;
-- a migration of this project takes audit_owner for its own transaction only.

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
    -- Added by 0009.trust-boundary. NOLOGIN and nothing more (never
    -- CREATEROLE, never a superuser): whoever takes one does so on purpose,
    -- and gains nothing outside schema audit.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_owner') THEN
        BEGIN
            CREATE ROLE audit_owner NOLOGIN;
            COMMENT ON ROLE audit_owner IS
                'Owns schema audit and its tables. No login holds it: a migration takes it for its own transaction.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_definer') THEN
        BEGIN
            CREATE ROLE audit_definer NOLOGIN;
            COMMENT ON ROLE audit_definer IS
                'Owns the SECURITY DEFINER functions of schema audit, which run as it: may insert entries and blocks and read what sealing and verifying read, nothing else. No login holds it.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_admin') THEN
        BEGIN
            CREATE ROLE audit_admin NOLOGIN;
            COMMENT ON ROLE audit_admin IS
                'May seal (audit.seal()), pin tenant logins and switch strict mode; cannot change or drop the log.';
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
END
$roles$;
