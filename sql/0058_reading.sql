-- Reading the log: an entity's history and a company's search, a page at a
-- time, each served by an index (0020_audit_logs.sql) without a sort.
--
-- Pages follow keyset pagination: a page ends with its last entry's
-- (created_at, id), and the next page starts strictly after it, so a page
-- costs the same at the start of the log and deep into it, and entries
-- written meanwhile neither shift nor repeat the pages already read.
--
-- Each row comes with that position as an opaque cursor text, which the next
-- call takes as `after`: a client pages without handling the instant itself
-- (a JavaScript Date keeps milliseconds, a timestamp without time zone shifts
-- with the client's zone; either would skip or repeat entries). The pair
-- after_created_at, after_id still works, for callers of 0007.reading.
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

-- What search() and history() return: an entry, and the cursor of the page
-- after it. A type of its own because a function's result columns may not
-- share a name with its parameters (company_id, entity, ...).
CREATE TYPE audit.page_entry AS (
    id           uuid,
    company_id   uuid,
    franchise_id uuid,
    user_id      uuid,
    action       text,
    entity       text,
    entity_id    uuid,
    details      jsonb,
    created_at   timestamptz,
    txid         bigint,
    context      jsonb,
    origin       bigint,
    cursor       text
);

COMMENT ON TYPE audit.page_entry IS
    'An entry of audit.audit_logs as audit.search() and audit.history() return it, with the cursor to pass as `after` for the entries after it.';

-- The cursor: "<microseconds since 1970 UTC>.<id>", opaque to clients (they
-- pass back what they got; the form may change). audit_py builds the same
-- text (audit_py/queries.py), so a cursor printed by `audit-py log` pages in
-- SQL too, and the other way round. Plain text, not an encoding of it: every
-- row of a page carries one, and base64 cost four times as much per row.
-- No SET clause, so that PostgreSQL inlines it into search() and history()
-- (a SET clause would cost a call per row); every name in it is
-- schema-qualified, so no search_path changes what it does.
CREATE FUNCTION audit.page_cursor(created_at timestamptz, id uuid)
RETURNS text
LANGUAGE sql
STABLE  -- as extract() from a timestamptz is: an IMMUTABLE one would not inline
PARALLEL SAFE
AS $$
SELECT (pg_catalog.extract('epoch', created_at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text
       OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) id::pg_catalog.text
$$;

COMMENT ON FUNCTION audit.page_cursor(timestamptz, uuid) IS
    'The opaque cursor of the position after the entry with this created_at and id: pass it as `after` to audit.search() or audit.history().';

-- The position a cursor names; AU007 naming `after` for any text that is not
-- one, whatever part of the decoding fails.
CREATE FUNCTION audit._cursor_position(caller text, after text, OUT created_at timestamptz, OUT id uuid)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    BEGIN
        created_at := '1970-01-01 00:00:00+00'::pg_catalog.timestamptz OPERATOR(pg_catalog.+)
            (pg_catalog.split_part(after, '.', 1)::pg_catalog.int8::pg_catalog.text
             OPERATOR(pg_catalog.||) ' microseconds')::pg_catalog.interval;
        id := pg_catalog.split_part(after, '.', 2)::pg_catalog.uuid;
    EXCEPTION WHEN OTHERS THEN
        created_at := NULL;
    END;
    IF created_at IS NULL OR id IS NULL OR audit.page_cursor(created_at, id) OPERATOR(pg_catalog.<>) after THEN
        RAISE EXCEPTION '%: after is not a cursor from a previous page', caller
            USING ERRCODE = 'AU007', COLUMN = 'after',
                  HINT = 'Pass the cursor column of the last row of the previous page.';
    END IF;
END;
$$;

COMMENT ON FUNCTION audit._cursor_position(text, text) IS
    'The (created_at, id) a cursor of audit.page_cursor() names; AU007 naming `after` for anything else.';

CREATE FUNCTION audit.history(
    entity           text,
    entity_id        uuid,
    page_size        integer     DEFAULT 100,
    after_created_at timestamptz DEFAULT NULL,
    after_id         uuid        DEFAULT NULL,
    after            text        DEFAULT NULL
)
RETURNS SETOF audit.page_entry
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem pg_catalog.text := CASE WHEN history.entity IS NULL THEN 'entity must not be null'
                         WHEN history.entity_id IS NULL THEN 'entity_id must not be null'
                         WHEN after IS NOT NULL AND (after_created_at IS NOT NULL OR after_id IS NOT NULL)
                             THEN 'after is a cursor that replaces after_created_at and after_id: give one or the other'
                         ELSE audit._page_problem(page_size, after_created_at, after_id) END;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'history: %', problem
            USING ERRCODE = 'AU007', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF after IS NOT NULL THEN
        SELECT p.created_at, p.id INTO after_created_at, after_id FROM audit._cursor_position('history', after) p;
    END IF;
    -- Two queries rather than one with "after IS NULL OR ...": a cached plan
    -- would not use the bound to start the index scan at the right place.
    IF after_created_at IS NULL THEN
        RETURN QUERY
        SELECT a.id, a.company_id, a.franchise_id, a.user_id, a.action, a.entity, a.entity_id, a.details,
               a.created_at, a.txid, a.context, a.origin, audit.page_cursor(a.created_at, a.id)
        FROM audit.audit_logs a
        WHERE a.entity = history.entity AND a.entity_id = history.entity_id
        ORDER BY a.created_at, a.id
        LIMIT page_size;
    ELSE
        RETURN QUERY
        SELECT a.id, a.company_id, a.franchise_id, a.user_id, a.action, a.entity, a.entity_id, a.details,
               a.created_at, a.txid, a.context, a.origin, audit.page_cursor(a.created_at, a.id)
        FROM audit.audit_logs a
        WHERE a.entity = history.entity AND a.entity_id = history.entity_id
          AND (a.created_at, a.id) > (after_created_at, after_id)
        ORDER BY a.created_at, a.id
        LIMIT page_size;
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid, text) IS
$$The entries of one entity, oldest first, page_size (default 100, at most 100000) at a time.
For the next page pass the last row's cursor as after.$$;

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
    after_id         uuid        DEFAULT NULL,
    after            text        DEFAULT NULL
)
RETURNS SETOF audit.page_entry
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem pg_catalog.text := CASE WHEN search.company_id IS NULL THEN 'company_id must not be null'
                         WHEN since > until THEN 'since must not be after until'
                         WHEN after IS NOT NULL AND (after_created_at IS NOT NULL OR after_id IS NOT NULL)
                             THEN 'after is a cursor that replaces after_created_at and after_id: give one or the other'
                         ELSE audit._page_problem(page_size, after_created_at, after_id) END;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'search: %', problem
            USING ERRCODE = 'AU007', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF after IS NOT NULL THEN
        SELECT p.created_at, p.id INTO after_created_at, after_id FROM audit._cursor_position('search', after) p;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT a.id, a.company_id, a.franchise_id, a.user_id, a.action, a.entity, a.entity_id, a.details,'
        ' a.created_at, a.txid, a.context, a.origin, audit.page_cursor(a.created_at, a.id)'
        ' FROM audit.audit_logs a WHERE a.company_id = $1'
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

COMMENT ON FUNCTION audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid, text) IS
$$A company's entries, newest first, page_size (default 100, at most 100000) at a time, narrowed
to a franchise, a user, an action, an entity, and a time range [since, until). For the next page
pass the last row's cursor as after.$$;
