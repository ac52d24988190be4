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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem pg_catalog.text := CASE WHEN history.entity IS NULL THEN 'entity must not be null'
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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem pg_catalog.text := CASE WHEN search.company_id IS NULL THEN 'company_id must not be null'
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
