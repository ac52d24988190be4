-- Foundation: schema audit, the roles, audit.audit_logs, its immutability
-- triggers, audit.record_audit(), audit.record_audit_many() and the
-- privileges.
--
-- Released migrations are never edited: a change is a new migration, and
-- sql/ is updated to match (tests/test_schema_sync.py checks they agree).

-- Wait at most this long for a lock held by a live application, then fail
-- rather than queue every query of the application behind this migration.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---- 0010_schema_and_roles.sql ----

-- The audit schema and the two roles that use it.
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
END
$roles$;

-- ---- 0020_audit_logs.sql ----

-- The log itself: one row per critical action.

CREATE TABLE audit.audit_logs (
    id           uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    company_id   uuid        NOT NULL,
    franchise_id uuid,
    user_id      uuid,
    action       text        NOT NULL,
    entity       text        NOT NULL,
    entity_id    uuid        NOT NULL,
    details      jsonb       NOT NULL,
    -- The original specification had a nullable `timestamp` (without time
    -- zone). An audit trail needs an absolute instant that is always present:
    -- a local time read under another TimeZone setting, or a missing one,
    -- proves nothing. Hence timestamptz NOT NULL.
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT audit_logs_pkey PRIMARY KEY (id),
    CONSTRAINT audit_logs_action_not_blank CHECK (action ~ '[^[:space:]]'),
    CONSTRAINT audit_logs_entity_not_blank CHECK (entity ~ '[^[:space:]]'),
    CONSTRAINT audit_logs_details_is_object CHECK (pg_catalog.jsonb_typeof(details) = 'object')
);

CREATE INDEX audit_idx ON audit.audit_logs (company_id, franchise_id, created_at);

COMMENT ON TABLE audit.audit_logs IS
    'Append-only record of critical actions. Write with audit.record_audit(); UPDATE, DELETE and TRUNCATE are refused for every role.';
COMMENT ON COLUMN audit.audit_logs.id IS
    'Entry id, chosen by the database on insert (a supplied value is replaced).';
COMMENT ON COLUMN audit.audit_logs.company_id IS
    'Tenant: the company the action belongs to.';
COMMENT ON COLUMN audit.audit_logs.franchise_id IS
    'Franchise of the company the action belongs to, if any.';
COMMENT ON COLUMN audit.audit_logs.user_id IS
    'User who performed the action; NULL for actions of the system itself.';
COMMENT ON COLUMN audit.audit_logs.action IS
    'What was done, e.g. CREATE_INVOICE. Never blank.';
COMMENT ON COLUMN audit.audit_logs.entity IS
    'Kind of thing it was done to, e.g. invoice. Never blank.';
COMMENT ON COLUMN audit.audit_logs.entity_id IS
    'Id of the thing it was done to.';
COMMENT ON COLUMN audit.audit_logs.details IS
    'Structured metadata (changed fields, amounts, reasons): always a JSON object.';
COMMENT ON COLUMN audit.audit_logs.created_at IS
    'When the entry was written: the start of the writing transaction, set by the database on insert (a supplied value is replaced).';
COMMENT ON INDEX audit.audit_idx IS
    'Serves a company''s entries, per franchise, by time.';

-- ---- 0030_immutability.sql ----

-- Immutability: what is written stays as written.
--
-- Privileges keep applications out (see 0090_grants.sql); these triggers hold
-- for the roles that privileges cannot stop: the table owner and superusers.
-- Every trigger is ENABLE ALWAYS, so `SET session_replication_role = replica`
-- (how logical-replication tools skip triggers) does not skip them.
-- SQLSTATE AU001 (immutable violation) is the project's own.

CREATE FUNCTION audit._refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: audit entries are immutable', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'AU001',
              HINT = 'Audit entries can only be added, with audit.record_audit().';
END;
$$;

COMMENT ON FUNCTION audit._refuse_change() IS
    'Trigger function: refuses the operation that fired it with SQLSTATE AU001.';

-- The entry's identity and time are the database's: an owner inserting by
-- hand cannot back-date an entry or reuse an id. Assigning here, rather than
-- refusing a supplied value, is the only way: a trigger cannot tell a
-- supplied value from the column default.
-- No SET search_path here, unlike every other function: it runs for each
-- inserted row, a SET clause costs a configuration change per call, and the
-- body names only pg_catalog functions, which no search_path can shadow.
CREATE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION audit._stamp_entry() IS
    'Trigger function: sets id and created_at of a new entry, whatever the insert supplied.';

CREATE TRIGGER audit_logs_stamp
    BEFORE INSERT ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_stamp;

CREATE TRIGGER audit_logs_refuse_update
    BEFORE UPDATE ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_update;

CREATE TRIGGER audit_logs_refuse_delete
    BEFORE DELETE ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_delete;

-- TRUNCATE fires no row triggers: it needs a statement trigger of its own.
CREATE TRIGGER audit_logs_refuse_truncate
    BEFORE TRUNCATE ON audit.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_truncate;

COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id and created_at of every new entry (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_update ON audit.audit_logs IS
    'Refuses UPDATE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_delete ON audit.audit_logs IS
    'Refuses DELETE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_truncate ON audit.audit_logs IS
    'Refuses TRUNCATE for every role, replication sessions included (ENABLE ALWAYS).';

-- ---- 0035_entry_problem.sql ----

-- audit._entry_problem(): the one statement of what makes an entry invalid,
-- shared by audit.record_audit() and audit.record_audit_many().
--
-- It returns NULL for a valid entry, else a message that starts with the name
-- of the offending parameter. It is a plain SQL function without a SET clause
-- so that PostgreSQL inlines it into its callers (a SET clause would prevent
-- that, and cost a call per entry in a batch); its callers run with
-- search_path = '', so its operators resolve in pg_catalog.

CREATE FUNCTION audit._entry_problem(
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
    WHEN company_id IS NULL THEN 'company_id must not be null'
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

-- ---- 0040_record_audit.sql ----

-- audit.record_audit(): the one way to write an entry.
--
-- SECURITY DEFINER: it runs as the owner of the log, so audit_writer needs
-- EXECUTE on this function and no privilege on the table. The empty
-- search_path and the qualified names keep a caller's search_path from
-- redirecting anything it calls.
-- Bad input raises SQLSTATE AU002 (invalid entry) naming the parameter, in
-- the COLUMN field too, before anything is written.

CREATE FUNCTION audit.record_audit(
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
    problem text := audit._entry_problem(record_audit.company_id, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details)
    VALUES (record_audit.company_id, record_audit.franchise_id, record_audit.user_id,
            record_audit.action, record_audit.entity, record_audit.entity_id, record_audit.details)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) IS
$$Records one audit entry and returns its id. Parameters (named notation welcome):
company_id (required) the tenant; action (required, not blank) e.g. CREATE_INVOICE;
entity (required, not blank) e.g. invoice; entity_id (required) the thing acted on;
details (default '{}') a JSON object of metadata; user_id (default NULL) who acted;
franchise_id (default NULL) the franchise. Bad input raises SQLSTATE AU002 and writes nothing.
The entry commits or rolls back with the calling transaction.$$;

-- ---- 0050_record_audit_many.sql ----

-- audit.record_audit_many(): a batch of entries in one call, all or nothing.
--
-- One array per parameter of audit.record_audit(), element i of each array
-- making entry i. The batch is checked as a whole before anything is
-- written, then inserted by one set-based INSERT: a call per entry would
-- cost several times as much. Returns the new ids in the entries' order.

CREATE FUNCTION audit.record_audit_many(
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

    SELECT e.position, audit._entry_problem(e.company_id, e.action, e.entity, e.entity_id, e.details) AS problem
    INTO bad
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(actions), pg_catalog.unnest(entities),
                    pg_catalog.unnest(entity_ids), pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, action, entity, entity_id, details, position)
    WHERE audit._entry_problem(e.company_id, e.action, e.entity, e.entity_id, e.details) IS NOT NULL
    ORDER BY e.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_audit_many: entry % (counting from 1): %', bad.position, bad.problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(bad.problem, ' ', 1);
    END IF;

    RETURN QUERY
    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details)
    SELECT e.company_id, e.franchise_id, e.user_id, e.action, e.entity, e.entity_id, e.details
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
user_ids and franchise_ids may be NULL (none for any entry). Bad input raises SQLSTATE AU002,
naming the entry and the parameter, and writes nothing.$$;

-- ---- 0090_grants.sql ----

-- Privileges, all in one place.
--
-- Start from nothing: PUBLIC gets no privilege in schema audit, not even the
-- EXECUTE on functions that PostgreSQL grants it by default. Then each role
-- gets exactly what it needs. The owner of the objects (the role that applied
-- the migrations) keeps its privileges; the triggers bind it.

REVOKE ALL ON SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;

GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader;

-- audit_writer: record entries, through the functions only.
GRANT EXECUTE ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) TO audit_writer;
GRANT EXECUTE ON FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]) TO audit_writer;

-- audit_reader: read entries, nothing else.
GRANT SELECT ON audit.audit_logs TO audit_reader;

