-- Reading the log: audit.history() and audit.search(), a page at a time;
-- audit_tenant_reader, confined to one company by row-level security.
-- 0008.reading-indexes builds the indexes they read through.
-- depends: 0006.validate-context

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

-- ---- 0010_schema_and_roles.sql: the new role ----

DO $roles$
BEGIN
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

-- ---- 0058_reading.sql ----

-- Reading the log: an entity's history and a company's search, a page at a
-- time, each served by an index (0020_audit_logs.sql) without a sort.
--
-- Pages follow keyset pagination: a page ends with its last entry's
-- (created_at, id), and the next page starts strictly after it, so a page
-- costs the same at the start of the log and deep into it, and entries
-- written meanwhile neither shift nor repeat the pages already read.
--
-- SECURITY INVOKER: they read with the caller's rights, so row-level
-- security (0092_tenant_readers.sql) confines a tenant reader here too.
-- Bad arguments raise SQLSTATE AU007 (invalid query) naming the parameter.

CREATE FUNCTION audit._page_problem(page_size integer, after_created_at timestamptz, after_id uuid)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
SELECT CASE
    WHEN page_size IS NULL OR page_size < 1 OR page_size > 100000 THEN 'page_size must be between 1 and 100000'
    WHEN (after_created_at IS NULL) <> (after_id IS NULL)
        THEN 'after_created_at and after_id go together: both from the last entry of the previous page, or neither'
END
$$;

COMMENT ON FUNCTION audit._page_problem(integer, timestamptz, uuid) IS
    'NULL for a valid page request, else what is wrong with it, starting with the parameter''s name.';

CREATE FUNCTION audit.history(
    entity           text,
    entity_id        uuid,
    page_size        integer     DEFAULT 100,
    after_created_at timestamptz DEFAULT NULL,
    after_id         uuid        DEFAULT NULL
)
RETURNS SETOF audit.audit_logs
LANGUAGE plpgsql
STABLE
SET search_path = ''
AS $$
DECLARE
    problem text := CASE WHEN history.entity IS NULL THEN 'entity must not be null'
                         WHEN history.entity_id IS NULL THEN 'entity_id must not be null'
                         ELSE audit._page_problem(page_size, after_created_at, after_id) END;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'history: %', problem
            USING ERRCODE = 'AU007', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    -- Two queries rather than one with "after IS NULL OR ...": a cached plan
    -- would not use the bound to start the index scan at the right place.
    IF after_created_at IS NULL THEN
        RETURN QUERY
        SELECT a.* FROM audit.audit_logs a
        WHERE a.entity = history.entity AND a.entity_id = history.entity_id
        ORDER BY a.created_at, a.id
        LIMIT page_size;
    ELSE
        RETURN QUERY
        SELECT a.* FROM audit.audit_logs a
        WHERE a.entity = history.entity AND a.entity_id = history.entity_id
          AND (a.created_at, a.id) > (after_created_at, after_id)
        ORDER BY a.created_at, a.id
        LIMIT page_size;
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid) IS
$$The entries of one entity, oldest first, page_size (default 100, at most 100000) at a time.
For the next page pass the last entry's created_at and id as after_created_at and after_id.$$;

-- Built as dynamic SQL with only the filters given, so that the planner sees
-- the query it is asked and picks the index that serves it; one plan per call
-- costs well under a millisecond.
CREATE FUNCTION audit.search(
    company_id       uuid,
    franchise_id     uuid        DEFAULT NULL,
    user_id          uuid        DEFAULT NULL,
    action           text        DEFAULT NULL,
    entity           text        DEFAULT NULL,
    since            timestamptz DEFAULT NULL,
    until            timestamptz DEFAULT NULL,
    page_size        integer     DEFAULT 100,
    after_created_at timestamptz DEFAULT NULL,
    after_id         uuid        DEFAULT NULL
)
RETURNS SETOF audit.audit_logs
LANGUAGE plpgsql
STABLE
SET search_path = ''
AS $$
DECLARE
    problem text := CASE WHEN search.company_id IS NULL THEN 'company_id must not be null'
                         WHEN since > until THEN 'since must not be after until'
                         ELSE audit._page_problem(page_size, after_created_at, after_id) END;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'search: %', problem
            USING ERRCODE = 'AU007', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    RETURN QUERY EXECUTE
        'SELECT a.* FROM audit.audit_logs a WHERE a.company_id = $1'
        || CASE WHEN search.franchise_id IS NOT NULL THEN ' AND a.franchise_id = $2' ELSE '' END
        || CASE WHEN search.user_id IS NOT NULL THEN ' AND a.user_id = $3' ELSE '' END
        || CASE WHEN search.action IS NOT NULL THEN ' AND a.action = $4' ELSE '' END
        || CASE WHEN search.entity IS NOT NULL THEN ' AND a.entity = $5' ELSE '' END
        || CASE WHEN since IS NOT NULL THEN ' AND a.created_at >= $6' ELSE '' END
        || CASE WHEN until IS NOT NULL THEN ' AND a.created_at < $7' ELSE '' END
        || CASE WHEN after_created_at IS NOT NULL THEN ' AND (a.created_at, a.id) < ($9, $10)' ELSE '' END
        || ' ORDER BY a.created_at DESC, a.id DESC LIMIT $8'
    USING search.company_id, search.franchise_id, search.user_id, search.action, search.entity, since, until,
          page_size, after_created_at, after_id;
END;
$$;

COMMENT ON FUNCTION audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid) IS
$$A company's entries, newest first, page_size (default 100, at most 100000) at a time, narrowed
to a franchise, a user, an action, an entity, and a time range [since, until). For the next page
pass the last entry's created_at and id as after_created_at and after_id.$$;

-- ---- 0092_tenant_readers.sql ----

-- Tenant readers: a reader confined to one company.
--
-- A company's own admin or support staff read through a login granted
-- audit_tenant_reader, and see only the company named by the transaction's
-- context (audit.company_id, set with audit.set_context() or SET LOCAL,
-- 0036_context.sql); with no company in the context they see nothing.
-- Row-level security enforces it, on entries and on blocks, whatever the
-- query. audit_reader keeps reading everything. The owner, who bypasses
-- row-level security, still writes through audit.record_audit() and seals.
-- A role granted both reader roles reads everything: policies add up.
--
-- The context is the application's to set: on its own, it confines a login
-- that only the application uses. A login that people may use directly is
-- pinned to its companies in audit.tenant_logins; then naming another company
-- in the context shows nothing.

CREATE TABLE audit.tenant_logins (
    login_role regrole NOT NULL,
    company_id uuid    NOT NULL,
    CONSTRAINT tenant_logins_pkey PRIMARY KEY (login_role, company_id)
);

COMMENT ON TABLE audit.tenant_logins IS
    'Logins pinned to companies: a tenant reader whose login (or a role it belongs to) is listed reads those companies only, whatever its context names. Change it with audit.pin_tenant() and audit.unpin_tenant().';
COMMENT ON COLUMN audit.tenant_logins.login_role IS 'The login, or a role its members log in as.';
COMMENT ON COLUMN audit.tenant_logins.company_id IS 'A company that login may read.';
COMMENT ON INDEX audit.tenant_logins_pkey IS 'One row per login and company.';

-- SECURITY DEFINER, so that tenant readers need no privilege on the table,
-- and cannot list which logins read which companies.
CREATE FUNCTION audit._pinned_companies()
RETURNS uuid[]
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
SELECT pg_catalog.array_agg(p.company_id)
FROM audit.tenant_logins p
WHERE pg_catalog.pg_has_role(session_user, p.login_role::pg_catalog.oid, 'MEMBER')
$$;

COMMENT ON FUNCTION audit._pinned_companies() IS
    'The companies the session''s login is pinned to, NULL when it is not pinned.';

CREATE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
INSERT INTO audit.tenant_logins (login_role, company_id) VALUES (pin_tenant.login_role, pin_tenant.company_id)
ON CONFLICT DO NOTHING;
$$;

COMMENT ON FUNCTION audit.pin_tenant(regrole, uuid) IS
    'Pins a login (or a role) to a company: as a tenant reader it reads that company, and any other it is pinned to, only.';

CREATE FUNCTION audit.unpin_tenant(login_role regrole, company_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
DELETE FROM audit.tenant_logins p
WHERE p.login_role = unpin_tenant.login_role AND (unpin_tenant.company_id IS NULL OR p.company_id = unpin_tenant.company_id);
$$;

COMMENT ON FUNCTION audit.unpin_tenant(regrole, uuid) IS
    'Unpins a login from a company, or from all of them.';

ALTER TABLE audit.audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.blocks ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_logs_reader ON audit.audit_logs FOR SELECT TO audit_reader USING (true);
-- The pinned companies are read once per query (an uncorrelated subquery),
-- and compared with the context's company, not the row's: the row is matched
-- by the first condition, which an index serves.
CREATE POLICY audit_logs_tenant_reader ON audit.audit_logs FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY ((SELECT audit._pinned_companies())::uuid[]), true));
CREATE POLICY blocks_reader ON audit.blocks FOR SELECT TO audit_reader USING (true);
CREATE POLICY blocks_tenant_reader ON audit.blocks FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY ((SELECT audit._pinned_companies())::uuid[]), true));

COMMENT ON POLICY audit_logs_reader ON audit.audit_logs IS 'audit_reader reads every entry.';
COMMENT ON POLICY audit_logs_tenant_reader ON audit.audit_logs IS
    'audit_tenant_reader reads the entries of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies.';
COMMENT ON POLICY blocks_reader ON audit.blocks IS 'audit_reader reads every block.';
COMMENT ON POLICY blocks_tenant_reader ON audit.blocks IS
    'audit_tenant_reader reads the blocks of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies.';

-- PUBLIC gets nothing here either (0090_grants.sql came before these).
REVOKE ALL ON FUNCTION audit._pinned_companies(), audit.pin_tenant(regrole, uuid), audit.unpin_tenant(regrole, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._pinned_companies() TO audit_tenant_reader;

-- ---- 0090_grants.sql ----

-- PostgreSQL grants EXECUTE on new functions to PUBLIC.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO audit_tenant_reader;

-- Both readers: an entity's history and a company's search. audit_tenant_reader
-- reads entries and blocks too, but row-level security shows it the company of
-- its context only (0092_tenant_readers.sql); it needs set_context to name it.
GRANT SELECT ON audit.audit_logs, audit.blocks TO audit_tenant_reader;
-- They run with the caller's rights (for row-level security), so the caller
-- needs their argument check too.
GRANT EXECUTE ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid),
                          audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid),
                          audit._page_problem(integer, timestamptz, uuid)
    TO audit_reader, audit_tenant_reader;
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_tenant_reader;

-- The owner keeps audit.seal(), which it schedules (pg_cron, cron, audit-py
-- seal --watch), and audit.enable_strict_mode() and disable_strict_mode().
