-- Change tracking and context: audit.enable_tracking() records every INSERT,
-- UPDATE and DELETE of a business table; audit.set_context() (or SET LOCAL)
-- says who acts, and entries store the context's extra keys in a new column;
-- strict mode refuses entries without a user. docs/canonical-form.md
-- describes version 2 of the entry form, for entries with context.
-- depends: 0004.hardening

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

-- A constant default: PostgreSQL 11 and later add the column without
-- rewriting the table. The CHECK is added NOT VALID, so that adding it does
-- not scan the log under this migration's exclusive lock; 0006 validates it
-- under a lock that lets writers go on.
ALTER TABLE audit.audit_logs ADD COLUMN context jsonb NOT NULL DEFAULT '{}';
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_context_is_object
    CHECK (pg_catalog.jsonb_typeof(context) = 'object') NOT VALID;
COMMENT ON COLUMN audit.audit_logs.context IS
    'The extra keys of the writing transaction''s context (audit.set_context(extra => ...)): request id, client address and the like. ''{}'' when there were none.';

-- ---- 0035_entry_problem.sql ----

-- audit._entry_problem(): the one statement of what makes an entry invalid,
-- shared by audit.record_audit() and audit.record_audit_many().
--
-- It returns NULL for a valid entry, else a message that starts with the name
-- of the offending parameter. It is a plain SQL function without a SET clause
-- so that PostgreSQL inlines it into its callers (a SET clause would prevent
-- that, and cost a call per entry in a batch); its callers run with
-- search_path = '', so its operators resolve in pg_catalog.

CREATE OR REPLACE FUNCTION audit._entry_problem(
    company_id uuid,
    action     text,
    entity     text,
    entity_id  uuid,
    details    jsonb
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
SELECT CASE
    WHEN company_id IS NULL THEN 'company_id must not be null: pass it, or set audit.company_id in the context'
    WHEN action IS NULL OR action OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'action must not be blank'
    WHEN entity IS NULL OR entity OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'entity must not be blank'
    WHEN entity_id IS NULL THEN 'entity_id must not be null'
    WHEN details IS NULL THEN 'details must not be null (pass ''{}'' for no details)'
    WHEN pg_catalog.jsonb_typeof(details) OPERATOR(pg_catalog.<>) 'object'
        THEN 'details must be a JSON object, not ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_typeof(details)
END
$$;

COMMENT ON FUNCTION audit._entry_problem(uuid, text, text, uuid, jsonb) IS
    'NULL when an entry is valid, else what is wrong with it, starting with the parameter''s name.';

-- ---- 0036_context.sql ----

-- Who is acting, and on whose behalf: the context of the current transaction.
--
-- Every request of an application usually shares one database role behind a
-- connection pool, so the role cannot say who acted. The application says it
-- instead, in transaction-local settings, and every entry written in that
-- transaction (by audit.record_audit() or by change tracking) picks them up:
--
--     audit.user_id       the user acting (uuid)
--     audit.company_id    the company acted for (uuid)
--     audit.franchise_id  the franchise acted for (uuid)
--     audit.context       anything else worth keeping (request id, client
--                         address ...): a JSON object, stored with the entry
--
-- Set them with audit.set_context() or SET LOCAL, never with a plain SET: a
-- transaction-local setting ends with its transaction, so with a pool, or
-- PgBouncer in transaction mode, the next transaction on the connection
-- starts with no context at all.
--
-- A malformed setting raises SQLSTATE AU006 (invalid context) naming it.
-- These readers have no SET clause, so that callers that need them only now
-- and then pay no configuration change per call; they name only pg_catalog
-- objects, qualified.

CREATE FUNCTION audit._context_uuid(setting text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value text := pg_catalog.current_setting(setting, true);
BEGIN
    IF value IS NULL OR value OPERATOR(pg_catalog.=) '' THEN
        RETURN NULL;
    END IF;
    -- The forms uuid_in accepts: 32 hex digits, optionally in braces, with a
    -- hyphen allowed after any group of four.
    IF value OPERATOR(pg_catalog.!~) '^\{?[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}\}?$' THEN
        RAISE EXCEPTION 'context setting % is not a uuid: %', setting, pg_catalog.quote_literal(value)
            USING ERRCODE = 'AU006', COLUMN = setting,
                  HINT = 'Set it with audit.set_context(), or SET LOCAL to a uuid.';
    END IF;
    RETURN value::pg_catalog.uuid;
END;
$$;

COMMENT ON FUNCTION audit._context_uuid(text) IS
    'The uuid in a context setting (audit.user_id, audit.company_id, audit.franchise_id); NULL when unset.';

CREATE FUNCTION audit._context_extra()
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value text := pg_catalog.current_setting('audit.context', true);
    extra pg_catalog.jsonb;
BEGIN
    IF value IS NULL OR value OPERATOR(pg_catalog.=) '' THEN
        RETURN '{}';
    END IF;
    BEGIN
        extra := value::pg_catalog.jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        extra := NULL;
    END;
    IF extra IS NULL OR pg_catalog.jsonb_typeof(extra) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context setting audit.context is not a JSON object: %', pg_catalog.quote_literal(value)
            USING ERRCODE = 'AU006', COLUMN = 'audit.context',
                  HINT = 'Set it with audit.set_context(extra => ...), or SET LOCAL to a JSON object.';
    END IF;
    RETURN extra;
END;
$$;

COMMENT ON FUNCTION audit._context_extra() IS
    'The JSON object in the audit.context setting, ''{}'' when unset: stored with each entry as its context.';

-- Who acts, for an entry that names no user: the context's user_id, or NULL;
-- under strict mode (0037_strict_mode.sql) no user is refused instead.
CREATE FUNCTION audit._context_user(operation text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    acting_user uuid := audit._context_uuid('audit.user_id');
BEGIN
    IF acting_user IS NULL THEN
        PERFORM audit._require_user(operation);
    END IF;
    RETURN acting_user;
END;
$$;

COMMENT ON FUNCTION audit._context_user(text) IS
    'The user_id in the context; NULL when unset, or AU006 when strict mode requires one.';

-- SECURITY INVOKER and open to every role: it sets the caller's own
-- settings, which any role may set with SET LOCAL anyway.
CREATE FUNCTION audit.set_context(
    user_id      uuid  DEFAULT NULL,
    company_id   uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL,
    extra        jsonb DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF extra IS NOT NULL AND pg_catalog.jsonb_typeof(extra) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'set_context: extra must be a JSON object, not %', pg_catalog.jsonb_typeof(extra)
            USING ERRCODE = 'AU006', COLUMN = 'extra';
    END IF;
    IF set_context.user_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.user_id', set_context.user_id::text, true);
    END IF;
    IF set_context.company_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.company_id', set_context.company_id::text, true);
    END IF;
    IF set_context.franchise_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.franchise_id', set_context.franchise_id::text, true);
    END IF;
    IF extra IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.context', extra::text, true);
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) IS
$$Sets the audit context until the end of the current transaction: who acts (user_id), for
which company and franchise, and extra keys stored with each entry (a JSON object, replacing
any earlier extra). Parameters left NULL keep their current value. Entries written later in
the transaction pick the context up wherever their own value is NULL.$$;

-- ---- 0037_strict_mode.sql ----

-- Strict mode: no entry without a user.
--
-- Once a DBA turns it on, for the whole database or for the login roles an
-- application uses, an entry whose user_id would be NULL (neither passed nor
-- in the context) is refused with SQLSTATE AU006, and the change it records
-- with it. It is a table rather than a setting because PostgreSQL lets only
-- a superuser ALTER DATABASE or ALTER ROLE ... SET a custom setting, and
-- because a session cannot turn a table row off behind the DBA's back.
-- It catches code that forgets the context; it cannot catch code that lies
-- about it.

CREATE TABLE audit.strict_mode (
    -- NULL: every role of this database.
    login_role regrole,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by name        NOT NULL DEFAULT session_user
);

-- One row per role, and one for the whole database (NULL counts as 0).
CREATE UNIQUE INDEX strict_mode_login_role_key ON audit.strict_mode ((COALESCE(login_role::oid, 0::oid)));

COMMENT ON TABLE audit.strict_mode IS
    'Where strict mode is on: entries need a user_id. A row with login_role NULL covers every role. Change it with audit.enable_strict_mode() and audit.disable_strict_mode().';
COMMENT ON COLUMN audit.strict_mode.login_role IS
    'The login role (and its members) whose sessions must name a user; NULL for every role.';
COMMENT ON COLUMN audit.strict_mode.enabled_at IS
    'When strict mode was turned on for this role.';
COMMENT ON COLUMN audit.strict_mode.enabled_by IS
    'Who turned it on (the session''s login role).';
COMMENT ON INDEX audit.strict_mode_login_role_key IS
    'One row per role, and one for the whole database.';

-- Raises AU006 when strict mode covers this session. The session's login
-- role (session_user) is the one checked: a SECURITY DEFINER caller cannot
-- see the role it was called by, and a pooled application shares its login.
CREATE FUNCTION audit._require_user(operation text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = ''
AS $$
BEGIN
    IF EXISTS (SELECT FROM audit.strict_mode s
               WHERE s.login_role IS NULL
                  OR pg_catalog.pg_has_role(session_user, s.login_role::pg_catalog.oid, 'MEMBER')) THEN
        RAISE EXCEPTION '%: strict mode is on and no user_id is known', operation
            USING ERRCODE = 'AU006', COLUMN = 'user_id',
                  HINT = 'Pass user_id, or set it for the transaction with audit.set_context(user_id => ...).';
    END IF;
END;
$$;

COMMENT ON FUNCTION audit._require_user(text) IS
    'Refuses (AU006) an entry without user_id when strict mode covers the session''s login role.';

CREATE FUNCTION audit.enable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
INSERT INTO audit.strict_mode (login_role) VALUES (enable_strict_mode.login_role)
ON CONFLICT ((COALESCE(login_role::pg_catalog.oid, 0::pg_catalog.oid))) DO NOTHING;
$$;

COMMENT ON FUNCTION audit.enable_strict_mode(regrole) IS
    'Turns strict mode on for a login role, or for every role when called without one. Harmless when already on.';

CREATE FUNCTION audit.disable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
DELETE FROM audit.strict_mode s
WHERE s.login_role IS NOT DISTINCT FROM disable_strict_mode.login_role;
$$;

COMMENT ON FUNCTION audit.disable_strict_mode(regrole) IS
    'Turns strict mode off for a login role, or the database-wide setting when called without one.';

-- ---- 0040_record_audit.sql ----

-- audit.record_audit(): the one way to write an entry.
--
-- SECURITY DEFINER: it runs as the owner of the log, so audit_writer needs
-- EXECUTE on this function and no privilege on the table. The empty
-- search_path and the qualified names keep a caller's search_path from
-- redirecting anything it calls.
-- company_id, user_id and franchise_id passed as NULL come from the
-- transaction's context (0036_context.sql), whose extra keys are stored with
-- the entry. Bad input raises SQLSTATE AU002 (invalid entry) naming the
-- parameter, in the COLUMN field too, before anything is written; a
-- malformed context, or no user under strict mode, raises AU006.

CREATE OR REPLACE FUNCTION audit.record_audit(
    company_id   uuid,
    action       text,
    entity       text,
    entity_id    uuid,
    details      jsonb DEFAULT '{}',
    user_id      uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    -- A NULL parameter takes its value from the transaction's context (0036_context.sql).
    acting_company   uuid := COALESCE(record_audit.company_id, audit._context_uuid('audit.company_id'));
    acting_user      uuid := COALESCE(record_audit.user_id, audit._context_uuid('audit.user_id'));
    acting_franchise uuid := COALESCE(record_audit.franchise_id, audit._context_uuid('audit.franchise_id'));
    problem text := audit._entry_problem(acting_company, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF acting_user IS NULL THEN
        PERFORM audit._require_user('record_audit');
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    VALUES (acting_company, acting_franchise, acting_user, record_audit.action, record_audit.entity,
            record_audit.entity_id, record_audit.details,
            CASE WHEN COALESCE(pg_catalog.current_setting('audit.context', true), '') OPERATOR(pg_catalog.=) ''
                 THEN '{}' ELSE audit._context_extra() END)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) IS
$$Records one audit entry and returns its id. Parameters (named notation welcome):
company_id the tenant (NULL: from the context); action (required, not blank) e.g. CREATE_INVOICE;
entity (required, not blank) e.g. invoice; entity_id (required) the thing acted on;
details (default '{}') a JSON object of metadata; user_id (default NULL) who acted;
franchise_id (default NULL) the franchise. A NULL company_id, user_id or franchise_id comes
from the transaction's context (audit.set_context), whose extra keys are stored with the entry.
Bad input raises SQLSTATE AU002, a bad context or strict mode AU006; either writes nothing.
The entry commits or rolls back with the calling transaction.$$;

-- ---- 0050_record_audit_many.sql ----

-- audit.record_audit_many(): a batch of entries in one call, all or nothing.
--
-- One array per parameter of audit.record_audit(), element i of each array
-- making entry i. The batch is checked as a whole before anything is
-- written, then inserted by one set-based INSERT: a call per entry would
-- cost several times as much. Returns the new ids in the entries' order.

CREATE OR REPLACE FUNCTION audit.record_audit_many(
    company_ids   uuid[],
    actions       text[],
    entities      text[],
    entity_ids    uuid[],
    details       jsonb[],
    user_ids      uuid[] DEFAULT NULL,
    franchise_ids uuid[] DEFAULT NULL
)
RETURNS SETOF uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    entry_count integer := pg_catalog.cardinality(company_ids);
    -- NULL elements take their value from the transaction's context (0036_context.sql).
    context_company   uuid := audit._context_uuid('audit.company_id');
    context_user      uuid := audit._context_uuid('audit.user_id');
    context_franchise uuid := audit._context_uuid('audit.franchise_id');
    context_extra     jsonb := audit._context_extra();
    bad record;
BEGIN
    IF company_ids IS NULL THEN
        RAISE EXCEPTION 'record_audit_many: company_ids must not be null'
            USING ERRCODE = 'AU002', COLUMN = 'company_ids';
    END IF;
    -- ROWS FROM pads short arrays with NULLs: a missing optional value must be
    -- said, not guessed.
    IF pg_catalog.cardinality(actions) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entities) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entity_ids) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(record_audit_many.details) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(user_ids) <> entry_count
       OR pg_catalog.cardinality(franchise_ids) <> entry_count THEN
        RAISE EXCEPTION 'record_audit_many: the arrays must all have one element per entry (company_ids has %, actions %, entities %, entity_ids %, details %, user_ids %, franchise_ids %)',
                entry_count, pg_catalog.cardinality(actions), pg_catalog.cardinality(entities),
                pg_catalog.cardinality(entity_ids), pg_catalog.cardinality(record_audit_many.details),
                pg_catalog.cardinality(user_ids), pg_catalog.cardinality(franchise_ids)
            USING ERRCODE = 'AU002';
    END IF;

    SELECT e.position, audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity,
                                            e.entity_id, e.details) AS problem
    INTO bad
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(actions), pg_catalog.unnest(entities),
                    pg_catalog.unnest(entity_ids), pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, action, entity, entity_id, details, position)
    WHERE audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity, e.entity_id,
                               e.details) IS NOT NULL
    ORDER BY e.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_audit_many: entry % (counting from 1): %', bad.position, bad.problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(bad.problem, ' ', 1);
    END IF;
    IF context_user IS NULL AND entry_count OPERATOR(pg_catalog.>) 0
       AND (user_ids IS NULL OR pg_catalog.array_position(user_ids, NULL) IS NOT NULL) THEN
        PERFORM audit._require_user('record_audit_many');
    END IF;

    RETURN QUERY
    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    SELECT COALESCE(e.company_id, context_company), COALESCE(e.franchise_id, context_franchise),
           COALESCE(e.user_id, context_user), e.action, e.entity, e.entity_id, e.details, context_extra
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(franchise_ids), pg_catalog.unnest(user_ids),
                    pg_catalog.unnest(actions), pg_catalog.unnest(entities), pg_catalog.unnest(entity_ids),
                    pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, franchise_id, user_id, action, entity, entity_id, details, position)
    ORDER BY e.position
    RETURNING audit_logs.id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]) IS
$$Records a batch of audit entries, all or nothing, and returns their ids in order.
Element i of each array makes entry i, as the parameters of audit.record_audit() do;
user_ids and franchise_ids may be NULL (none for any entry). NULL elements come from the
transaction's context, as in audit.record_audit(). Bad input raises SQLSTATE AU002,
naming the entry and the parameter, a bad context or strict mode AU006; either writes nothing.$$;

-- ---- 0060_canonical_form.sql: audit.entry_hash() ----

-- No SET clause either: audit.seal() and audit.verify() hash every entry
-- they read, and only an inlined function costs nothing per row.
-- An entry without context keeps the version 1 bytes, so that entries sealed
-- before contexts existed still verify; one with context is version 2, which
-- adds it. Emptying or adding a context therefore changes the hash as well.
CREATE OR REPLACE FUNCTION audit.entry_hash(entry audit.audit_logs)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.sha256(
    CASE WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
         THEN '\x01'::pg_catalog.bytea ELSE '\x02'::pg_catalog.bytea END
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.id)
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.company_id)
    OPERATOR(pg_catalog.||) audit._opt_uuid_bytes(entry.franchise_id)
    OPERATOR(pg_catalog.||) audit._opt_uuid_bytes(entry.user_id)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.action)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.entity)
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.entity_id)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.details::pg_catalog.text)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(audit._micros(entry.created_at))
    OPERATOR(pg_catalog.||) pg_catalog.int8send(COALESCE(entry.txid, 0))
    OPERATOR(pg_catalog.||) CASE WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                                 THEN ''::pg_catalog.bytea
                                 ELSE audit._str_bytes(entry.context::pg_catalog.text) END
)
$$;

COMMENT ON FUNCTION audit.entry_hash(audit.audit_logs) IS
    'SHA-256 of an entry in canonical form (docs/canonical-form.md): version 1 without context, version 2 with.';

-- ---- 0055_tracking.sql ----

-- Change tracking: every INSERT, UPDATE and DELETE of a business table,
-- recorded with no application code.
--
--     SELECT audit.enable_tracking('public.invoices');
--
-- adds four triggers to the table. Three AFTER ... FOR EACH STATEMENT
-- triggers read the statement's transition tables and write one entry per
-- row with one set-based INSERT, so bulk statements (UPDATE ... WHERE, COPY)
-- cost no function call per row; a BEFORE TRUNCATE trigger refuses TRUNCATE,
-- which cannot be recorded row by row.
--
-- The triggers are the whole configuration: entity and excluded columns are
-- the JSON argument of the trigger function, and audit.tracked_tables reads
-- them back. There is no second copy to drift, and PostgreSQL's own rules
-- decide who may start or stop tracking a table: whoever may create and drop
-- its triggers, if that role may also use the trigger function (granted to
-- audit_writer, as tracking writes entries).
--
-- The triggers keep the default ENABLE (origin sessions only): a logical
-- replica applying the changes of a tracked table must not record them a
-- second time, since the entries arrive with the log.

CREATE FUNCTION audit._missing_company(operation text, row_key text)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION '%: row % has no company: the table gives none and audit.company_id is not set in the context',
            operation, row_key
        USING ERRCODE = 'AU002', COLUMN = 'company_id',
              HINT = 'Set the company for the transaction with audit.set_context(company_id => ...).';
END;
$$;

COMMENT ON FUNCTION audit._missing_company(text, text) IS
    'Raises AU002 for a tracked row with no company; called only when there is none, as the last COALESCE argument.';

-- SECURITY DEFINER: it writes the log as its owner, whoever changed the table.
-- jit = off: the planner sizes the INSERT by the transition table, and for a
-- bulk statement JIT compilation cost more than it saved in bench/tracking.py.
-- Two statements per tracked statement, whatever its size: one catalog
-- lookup and one INSERT, with the context read in the INSERT's own plan.
CREATE FUNCTION audit._track_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
SET jit = off
AS $$
DECLARE
    config     pg_catalog.jsonb := TG_ARGV[0]::pg_catalog.jsonb;
    entity     text := config ->> 'entity';
    action     text := CASE TG_OP WHEN 'INSERT' THEN 'CREATE_' WHEN 'UPDATE' THEN 'UPDATE_' ELSE 'DELETE_' END
                       || (config ->> 'action_suffix');
    operation  text := pg_catalog.format('%s on %I.%I', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    key_column text;
    excluded   text[];
    visible    text[];
BEGIN
    -- Columns are known by number as well as name, so that a renamed column
    -- changes nothing: the key is still found, an excluded column stays
    -- excluded under its new name.
    SELECT pg_catalog.min(c.name) FILTER (WHERE c.is_key),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE c.is_excluded), '{}'),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE NOT c.is_excluded), '{}')
    INTO key_column, excluded, visible
    FROM (SELECT a.attname::text AS name,
                 a.attnum = (config ->> 'key_attnum')::int2
                     AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AS is_key,
                 a.attnum = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_attnums')::int2))
                     OR a.attname::text = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_columns')))
                     AS is_excluded
          FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped) AS c;
    IF key_column IS NULL THEN
        RAISE EXCEPTION '%: the column tracking records as entity_id is gone or no longer a uuid', operation
            USING ERRCODE = 'AU004',
                  HINT = 'Run audit.enable_tracking() again for the table, or stop tracking it with audit.disable_tracking().';
    END IF;

    -- One INSERT per statement. company_id and franchise_id come from the
    -- row's own columns when it has them (read before the excluded columns
    -- are removed), else from the context; a row with no company at all is
    -- refused. The context is read once, by uncorrelated subqueries that run
    -- only if a row needs them; strict mode is checked the same way.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((r.j ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company(operation, r.j ->> key_column)),
               COALESCE((r.j ->> 'franchise_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user(operation)), action, entity, (r.j ->> key_column)::pg_catalog.uuid,
               r.j - excluded, (SELECT audit._context_extra())
        FROM (SELECT pg_catalog.to_jsonb(t) AS j FROM audit_new t) AS r;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((r.j ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company(operation, r.j ->> key_column)),
               COALESCE((r.j ->> 'franchise_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user(operation)), action, entity, (r.j ->> key_column)::pg_catalog.uuid,
               r.j - excluded, (SELECT audit._context_extra())
        FROM (SELECT pg_catalog.to_jsonb(t) AS j FROM audit_old t) AS r;
    ELSE
        -- PostgreSQL fills the old and new transition tables together, row by
        -- row, so the n-th old row and the n-th new row are the same row: this
        -- pairs them even when the statement changed the primary key.
        -- details holds the changed columns only; a row whose visible columns
        -- did not change writes nothing.
        INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((c.new_row ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company(operation, c.new_row ->> key_column)),
               COALESCE((c.new_row ->> 'franchise_id')::pg_catalog.uuid,
                        (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user(operation)), action, entity, (c.new_row ->> key_column)::pg_catalog.uuid,
               c.changes, (SELECT audit._context_extra())
        FROM (
            SELECT n.j AS new_row, d.changes
            FROM (SELECT pg_catalog.row_number() OVER () AS position, pg_catalog.to_jsonb(t) AS j
                  FROM audit_old t) AS o
            JOIN (SELECT pg_catalog.row_number() OVER () AS position, pg_catalog.to_jsonb(t) AS j
                  FROM audit_new t) AS n USING (position)
            CROSS JOIN LATERAL (
                SELECT pg_catalog.jsonb_object_agg(k.name, pg_catalog.jsonb_build_object('old', o.j -> k.name,
                                                                                         'new', n.j -> k.name)) AS changes
                FROM pg_catalog.unnest(visible) AS k(name)
                WHERE (o.j -> k.name) IS DISTINCT FROM (n.j -> k.name)
            ) AS d
        ) AS c
        WHERE c.changes IS NOT NULL;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION audit._track_changes() IS
    'Trigger function of tracked tables: one entry per inserted, updated or deleted row, from the statement''s transition tables.';

CREATE FUNCTION audit._refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE on %.% is not allowed: the table is tracked, and a TRUNCATE cannot be recorded row by row',
            TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'AU005',
              HINT = pg_catalog.format('DELETE the rows instead, or stop tracking first: SELECT audit.disable_tracking(%L);',
                                       pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
END;
$$;

COMMENT ON FUNCTION audit._refuse_truncate() IS
    'Trigger function of tracked tables: refuses TRUNCATE with SQLSTATE AU005.';

-- SECURITY INVOKER: the caller creates and drops the triggers, so PostgreSQL
-- checks the caller's own rights on the table.
CREATE FUNCTION audit.disable_tracking(table_name regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    tracking_trigger name;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'disable_tracking: table_name must not be null'
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;
    FOR tracking_trigger IN
        SELECT t.tgname FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = table_name
          AND t.tgname IN ('audit_track_insert', 'audit_track_update', 'audit_track_delete', 'audit_refuse_truncate')
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', tracking_trigger, table_name);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION audit.disable_tracking(regclass) IS
    'Stops tracking a table: drops its tracking triggers. Entries already written stay. Harmless on an untracked table.';

CREATE FUNCTION audit.enable_tracking(
    table_name      regclass,
    entity          text   DEFAULT NULL,
    exclude_columns text[] DEFAULT '{}'
)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    relation    record;
    key_columns text[];
    key_types   pg_catalog.oid[];
    unknown     text;
    mistyped    text;
    config      pg_catalog.jsonb;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'enable_tracking: table_name must not be null'
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;
    SELECT c.relname, c.relkind, c.relnamespace INTO relation FROM pg_catalog.pg_class c WHERE c.oid = table_name;
    IF relation.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'enable_tracking: % is not a table', table_name
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;
    IF relation.relnamespace = 'audit'::pg_catalog.regnamespace THEN
        RAISE EXCEPTION 'enable_tracking: % belongs to the audit log itself', table_name
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;

    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum), pg_catalog.array_agg(a.atttypid ORDER BY a.attnum)
    INTO key_columns, key_types
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = table_name AND i.indisprimary;
    IF key_columns IS NULL THEN
        RAISE EXCEPTION 'enable_tracking: % has no primary key; tracking needs a single uuid primary key, recorded as entity_id',
                table_name
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    ELSIF pg_catalog.cardinality(key_columns) > 1 THEN
        RAISE EXCEPTION 'enable_tracking: the primary key of % has % columns (%); tracking needs a single uuid column, recorded as entity_id',
                table_name, pg_catalog.cardinality(key_columns), pg_catalog.array_to_string(key_columns, ', ')
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    ELSIF key_types[1] <> 'pg_catalog.uuid'::pg_catalog.regtype THEN
        RAISE EXCEPTION 'enable_tracking: the primary key % of % is of type %, not uuid; tracking records it as entity_id',
                key_columns[1], table_name, key_types[1]::pg_catalog.regtype
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;

    IF exclude_columns IS NULL THEN
        RAISE EXCEPTION 'enable_tracking: exclude_columns must not be null (pass ''{}'' to exclude none)'
            USING ERRCODE = 'AU004', COLUMN = 'exclude_columns';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x.name), ', ') INTO unknown
    FROM pg_catalog.unnest(exclude_columns) AS x(name)
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = table_name AND a.attname = x.name AND a.attnum > 0 AND NOT a.attisdropped);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'enable_tracking: exclude_columns names columns that % does not have: %', table_name, unknown
            USING ERRCODE = 'AU004', COLUMN = 'exclude_columns';
    END IF;

    SELECT pg_catalog.string_agg(pg_catalog.format('%I is %s', a.attname, a.atttypid::pg_catalog.regtype), ', ')
    INTO mistyped
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = table_name AND a.attname IN ('company_id', 'franchise_id') AND NOT a.attisdropped
      AND a.atttypid <> 'pg_catalog.uuid'::pg_catalog.regtype;
    IF mistyped IS NOT NULL THEN
        RAISE EXCEPTION 'enable_tracking: % has % where tracking reads a uuid', table_name, mistyped
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;

    -- Without an entity: the table's name made singular by plain English
    -- rules (invoices: invoice, companies: company, addresses: address).
    entity := COALESCE(entity, CASE
        WHEN relation.relname ~ '[^aeiou]ies$' THEN pg_catalog.regexp_replace(relation.relname, 'ies$', 'y')
        WHEN relation.relname ~ '(ss|sh|ch|x|z)es$' THEN pg_catalog.regexp_replace(relation.relname, 'es$', '')
        WHEN relation.relname ~ '[^su]s$' THEN pg_catalog.regexp_replace(relation.relname, 's$', '')
        ELSE relation.relname::text
    END);
    IF entity !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'enable_tracking: entity must not be blank'
            USING ERRCODE = 'AU004', COLUMN = 'entity';
    END IF;

    config := pg_catalog.jsonb_build_object(
        'entity', entity,
        'action_suffix', pg_catalog.upper(pg_catalog.regexp_replace(entity, '[^[:alnum:]]+', '_', 'g')),
        'key_attnum', (SELECT a.attnum FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = table_name AND a.attname = key_columns[1]),
        'exclude_columns', pg_catalog.to_jsonb(exclude_columns),
        'exclude_attnums', pg_catalog.to_jsonb(ARRAY(
            SELECT a.attnum FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = table_name AND a.attname = ANY (exclude_columns) ORDER BY a.attnum)));

    -- Enabling again replaces the triggers, with the new settings.
    PERFORM audit.disable_tracking(table_name);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_track_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS audit_new'
        ' FOR EACH STATEMENT EXECUTE FUNCTION audit._track_changes(%L)', table_name, config);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_track_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new'
        ' FOR EACH STATEMENT EXECUTE FUNCTION audit._track_changes(%L)', table_name, config);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_track_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS audit_old'
        ' FOR EACH STATEMENT EXECUTE FUNCTION audit._track_changes(%L)', table_name, config);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_refuse_truncate BEFORE TRUNCATE ON %s'
        ' FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_truncate()', table_name);
END;
$$;

COMMENT ON FUNCTION audit.enable_tracking(regclass, text, text[]) IS
$$Starts recording every INSERT, UPDATE and DELETE of a table, whoever makes it: actions
CREATE_<ENTITY>, UPDATE_<ENTITY> (changed columns only, old and new) and DELETE_<ENTITY>,
entity_id the row's primary key (a single uuid column). entity defaults to the table's name
made singular; exclude_columns never reach the log. TRUNCATE of the table is refused from then
on. Enabling again replaces the settings. Bad arguments raise SQLSTATE AU004.$$;

CREATE VIEW audit.tracked_tables AS
SELECT tracker.tgrelid::pg_catalog.regclass AS table_name,
       tracker.config ->> 'entity' AS entity,
       ARRAY(SELECT a.attname::text
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = tracker.tgrelid AND a.attnum > 0
               AND NOT a.attisdropped
               AND (a.attname::text = ANY (ARRAY(
                        SELECT pg_catalog.jsonb_array_elements_text(tracker.config -> 'exclude_columns')))
                    OR a.attnum = ANY (ARRAY(
                        SELECT pg_catalog.jsonb_array_elements_text(tracker.config -> 'exclude_attnums')::pg_catalog.int2)))
             ORDER BY a.attnum) AS exclude_columns,
       (SELECT pg_catalog.count(*) = 4
               AND pg_catalog.bool_and(t.tgenabled <> 'D')
        FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = tracker.tgrelid
          AND t.tgname IN ('audit_track_insert', 'audit_track_update', 'audit_track_delete', 'audit_refuse_truncate'))
           AS triggers_in_place
FROM (
    SELECT DISTINCT ON (t.tgrelid) t.tgrelid,
           -- The trigger's one argument, NUL-terminated, in the server's encoding.
           pg_catalog.convert_from(pg_catalog.substring(t.tgargs, 1, pg_catalog.length(t.tgargs) - 1),
                                   pg_catalog.current_setting('server_encoding'))::pg_catalog.jsonb AS config
    FROM pg_catalog.pg_trigger t
    WHERE t.tgfoid = 'audit._track_changes()'::pg_catalog.regprocedure
    ORDER BY t.tgrelid, t.tgname
) AS tracker;

COMMENT ON VIEW audit.tracked_tables IS
    'The tracked tables, with their entity and excluded columns (by current name); triggers_in_place is false when a tracking trigger was dropped or disabled.';
COMMENT ON COLUMN audit.tracked_tables.table_name IS 'The tracked table.';
COMMENT ON COLUMN audit.tracked_tables.entity IS
    'The entity of its entries; their actions are CREATE_, UPDATE_ and DELETE_ followed by it in capitals.';
COMMENT ON COLUMN audit.tracked_tables.exclude_columns IS
    'Columns that never reach the log, by their current names (a renamed column stays excluded).';
COMMENT ON COLUMN audit.tracked_tables.triggers_in_place IS
    'False when one of the four tracking triggers was dropped or disabled: enable_tracking() again restores them.';

-- ---- 0080_verify.sql: the new fingerprints ----

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = ''
AS $$
WITH expected_triggers (table_name, trigger_name, definition) AS (VALUES
    ('audit_logs', 'audit_logs_stamp',
     'CREATE TRIGGER audit_logs_stamp BEFORE INSERT ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry()'),
    ('audit_logs', 'audit_logs_refuse_update',
     'CREATE TRIGGER audit_logs_refuse_update BEFORE UPDATE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit_logs', 'audit_logs_refuse_delete',
     'CREATE TRIGGER audit_logs_refuse_delete BEFORE DELETE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit_logs', 'audit_logs_refuse_truncate',
     'CREATE TRIGGER audit_logs_refuse_truncate BEFORE TRUNCATE ON audit.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_update',
     'CREATE TRIGGER blocks_refuse_update BEFORE UPDATE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_delete',
     'CREATE TRIGGER blocks_refuse_delete BEFORE DELETE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_truncate',
     'CREATE TRIGGER blocks_refuse_truncate BEFORE TRUNCATE ON audit.blocks FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()')
),
-- SHA-256 of each protective function's body (prosrc), with its security
-- and settings, as the migrations install them. tests/test_tamper_evidence.py
-- recomputes them from a fresh install.
expected_functions (signature, fingerprint) AS (VALUES
    ('audit._refuse_change()', '7fa9740a29142d640bf401ccee6d23eb8d5261d0ddabbc90bad52145d83208db'),
    ('audit._stamp_entry()', '6af9bf4746e719b2c58ac0d6ed24008f5e5c15aec9a1900725d866e44e118563'),
    ('audit._context_uuid(text)', '681ef74ff338c3a728d9a27c63d3508cc212f7c0edf2c88a6fa47799eccff26c'),
    ('audit._context_user(text)', '50445aa6cfacad804ae9d4bf0d93cea707f3cf836fa540edd1a144b787717dc8'),
    ('audit._context_extra()', '069c69b6b5d4c16f49480b9d5a8e98370c165facf366f60a8233c0a5e4244301'),
    ('audit._require_user(text)', 'ac71e815ee056bb7d6b766ef35928633aa8987598f92b6ea06d91ccd27156c54'),
    ('audit._entry_problem(uuid,text,text,uuid,jsonb)', '7fd1a507835b9058340df3be9388841b0a0f4a5e1abc1482ad74f0dac9042dab'),
    ('audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', 'bd53a996df0c5339480659300728d6616afd8b9590f2b535e1fa2a164a93e71d'),
    ('audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', '724e08c919693c6a5d8dd730c14af7d4ba861f787a6e8f4220dbbb32a9aa290b'),
    ('audit._missing_company(text,text)', '3e2e99b6c7368988df6596047fdf2baba0a213e2b9a7ebd7f519dffb92549fa1'),
    ('audit._track_changes()', 'fff121e0553f027423037edfa18905eb8399f8ca0bc8c02df5f6b0936f6487f2'),
    ('audit._refuse_truncate()', '9c1bba9d36861f80b7d21c419185a07b80f8862b3714f054dc25a3091b4c1f3c'),
    ('audit._str_bytes(text)', '3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518'),
    ('audit._opt_uuid_bytes(uuid)', '80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de'),
    ('audit._micros(timestamp with time zone)', '205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715'),
    ('audit.entry_hash(audit.audit_logs)', '0dd7c1be918428bad5f1965cbe63ec085a279e837dec273103418022e119ccb2'),
    ('audit._merkle_root(bytea[])', '0f338bf7343ce60f3aaeff245b193d2425645d9febc1463a5da121858e435dc7'),
    ('audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'c60b120fd3dcd41c1b40ca611dfd0ab024fcf6669f821d4291c13532dd90a535'),
    ('audit.seal()', '6e5df7321fc6c0c3ff2c2edf186c68c2a59d7588daa009f1b9507bbca99f910d')
),
actual_triggers AS (
    SELECT c.relname AS table_name, t.tgname AS trigger_name, t.tgenabled,
           pg_catalog.pg_get_triggerdef(t.oid) AS definition
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND NOT t.tgisinternal
),
actual_functions AS (
    SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS signature,
           pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
               p.prosrc OPERATOR(pg_catalog.||) pg_catalog.chr(10)
               OPERATOR(pg_catalog.||) p.prosecdef::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.chr(10)
               OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_to_string(p.proconfig, ','), ''),
               'UTF8')), 'hex') AS fingerprint
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace
)
SELECT pg_catalog.format('trigger %s on audit.%s is missing: it was dropped', e.trigger_name, e.table_name)
FROM expected_triggers e
LEFT JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.trigger_name IS NULL
UNION ALL
SELECT pg_catalog.format('trigger %s on audit.%s is %s, not enabled always', e.trigger_name, e.table_name,
                         CASE a.tgenabled WHEN 'D' THEN 'disabled' WHEN 'O' THEN 'enabled only for origin sessions'
                                          WHEN 'R' THEN 'enabled only for replica sessions' END)
FROM expected_triggers e
JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.tgenabled OPERATOR(pg_catalog.<>) 'A'
UNION ALL
SELECT pg_catalog.format('trigger %s on audit.%s was redefined: %s', e.trigger_name, e.table_name, a.definition)
FROM expected_triggers e
JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.definition OPERATOR(pg_catalog.<>) e.definition
UNION ALL
SELECT pg_catalog.format('rule %s on audit.%s was added: it can rewrite or swallow writes', w.rulename, c.relname)
FROM pg_catalog.pg_rewrite w
JOIN pg_catalog.pg_class c ON c.oid = w.ev_class
WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND c.relkind = 'r'
UNION ALL
SELECT pg_catalog.format('function %s is missing: it was dropped', e.signature)
FROM expected_functions e
LEFT JOIN actual_functions a USING (signature)
WHERE a.signature IS NULL
UNION ALL
SELECT pg_catalog.format('function %s was replaced: its definition is not the one installed', e.signature)
FROM expected_functions e
JOIN actual_functions a USING (signature)
WHERE a.fingerprint OPERATOR(pg_catalog.<>) e.fingerprint
$$;

-- ---- 0090_grants.sql ----

-- PostgreSQL grants EXECUTE on new functions to PUBLIC.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;

-- Tracking a table is another way to write entries: a role that could attach
-- the trigger function to a table of its own could write any entry through it.
GRANT EXECUTE ON FUNCTION audit.enable_tracking(regclass, text, text[]), audit.disable_tracking(regclass),
                          audit._track_changes(), audit._refuse_truncate() TO audit_writer;

-- Both: say who acts, see what is tracked and where strict mode is on.
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_writer, audit_reader;
GRANT SELECT ON audit.tracked_tables, audit.strict_mode TO audit_writer, audit_reader;
