-- Trust boundary: no login gains a right through the audit schema.
--
-- - Every SECURITY DEFINER and trigger function pins search_path =
--   pg_catalog, pg_temp (pg_temp last: under search_path = '' PostgreSQL
--   looks up type names in pg_temp first, where a caller's temporary domain
--   could run its code with the function's rights), and every function
--   qualifies the types it declares.
-- - Tracking refuses what it cannot record whole (partitioned tables,
--   partitions, inheritance parents and children) and rows whose
--   serialization could run a user-defined cast (audit._untrackable()); it
--   reads columns of any name, t included.
-- - Sealing takes turns on a row only audit_definer may lock, not on an
--   advisory lock any login could hold; at REPEATABLE READ it waits and
--   seals nothing rather than fail.
-- - The DDL guard (superuser installs) lifts for the one transaction whose
--   id audit.allow_ddl names, and refuses tables inheriting from the log's.
-- - No login owns the log: schema, tables and views go to audit_owner, the
--   SECURITY DEFINER functions to audit_definer (NOLOGIN roles no login
--   holds); the installing login keeps audit_admin (seal, pins, strict mode).
--
-- From here on a migration acts as audit_owner for its own transaction
-- (CONTRIBUTING.md).
-- depends: 0008.reading-indexes

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The guard of 0004.hardening, as it stands until this migration replaces it.
SET LOCAL audit.allow_ddl = on;

-- ---- 0095_hardening.sql ----

-- Hardening, where privileges allow: event triggers that refuse DDL on the
-- objects of schema audit (ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER,
-- CREATE OR REPLACE FUNCTION, ALTER FUNCTION, new functions or overloads,
-- new policies, rules and triggers, changes of owner, DROP TABLE, DROP
-- SCHEMA ...) and tables that inherit from the log's, for every role.
--
-- Creating an event trigger needs a superuser, which managed PostgreSQL does
-- not give: there this step does nothing but raise a NOTICE, and
-- audit.verify() still reports any change to the protections. A DBA applying
-- a migration of this project lifts the refusal for that one transaction by
-- naming it:
--     DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- A value that names no transaction lifts nothing, so a plain SET, a
-- setting of the role or database, or `options=-c audit.allow_ddl=...` in a
-- connection string leaves every later transaction protected.
-- SQLSTATE AU003 (protected schema) is the project's own.
--
-- The function lives in a schema of its own, audit_guard: one in schema
-- audit would be dropped, event triggers and all, by DROP SCHEMA audit
-- CASCADE before it could refuse it. Applied again by a superuser, this
-- file replaces the function and keeps the event triggers.

DO $hardening$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'audit_guard') THEN
            RAISE NOTICE 'audit: the DDL-refusing event triggers were installed by a superuser, and only one can update them; left as they are.';
        ELSE
            RAISE NOTICE 'audit: the DDL-refusing event triggers need a superuser to install; skipped. audit.verify() still reports changed protections.';
        END IF;
        RETURN;
    END IF;

    CREATE SCHEMA IF NOT EXISTS audit_guard;
    COMMENT ON SCHEMA audit_guard IS 'Event trigger function that protects schema audit from DDL.';
    REVOKE ALL ON SCHEMA audit_guard FROM PUBLIC;

    -- It runs as whoever issues the DDL, for every DDL of the database.
    CREATE OR REPLACE FUNCTION audit_guard.refuse_ddl()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $function$
    DECLARE
        lift   pg_catalog.text := pg_catalog.current_setting('audit.allow_ddl', true);
        target pg_catalog.record;
    BEGIN
        IF lift OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()::pg_catalog.text THEN
            RETURN;
        END IF;
        IF TG_EVENT OPERATOR(pg_catalog.=) 'sql_drop' THEN
            SELECT o.object_identity, TG_TAG AS command INTO target
            FROM pg_catalog.pg_event_trigger_dropped_objects() o
            WHERE o.schema_name OPERATOR(pg_catalog.=) 'audit'
               OR (o.object_type OPERATOR(pg_catalog.=) 'schema' AND o.object_name OPERATOR(pg_catalog.=) 'audit')
            LIMIT 1;
        ELSE
            SELECT c.object_identity, c.command_tag AS command INTO target
            FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.schema_name OPERATOR(pg_catalog.=) 'audit'
               -- The schema itself (ALTER SCHEMA ... OWNER, RENAME), known by
               -- what it holds: after a rename, its name is another.
               OR (c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_class r
                               WHERE r.relnamespace OPERATOR(pg_catalog.=) c.objid
                                 AND r.relname OPERATOR(pg_catalog.=) 'audit_logs'))
               -- Triggers, rules and policies have no schema of their own: their table's counts.
               OR pg_catalog.to_regnamespace('audit') IN (
                   SELECT r.relnamespace FROM pg_catalog.pg_class r
                   WHERE r.oid IN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t
                                   WHERE c.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = c.objid
                                   UNION ALL
                                   SELECT w.ev_class FROM pg_catalog.pg_rewrite w
                                   WHERE c.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = c.objid
                                   UNION ALL
                                   SELECT o.polrelid FROM pg_catalog.pg_policy o
                                   WHERE c.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND o.oid = c.objid))
               -- A table of any schema that inherits from one of the log's
               -- (CREATE TABLE ... INHERITS, ALTER TABLE ... INHERIT): its rows
               -- would be read as the log's, with an id, time and txid of the
               -- inserter's choosing.
               OR (c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_inherits i
                               JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) i.inhparent
                               WHERE i.inhrelid OPERATOR(pg_catalog.=) c.objid
                                 AND p.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('audit')))
            LIMIT 1;
        END IF;
        IF target.object_identity IS NOT NULL THEN
            RAISE EXCEPTION '% on % is not allowed: schema audit is protected', target.command, target.object_identity
                USING ERRCODE = 'AU003',
                      HINT = 'A DBA applying a migration lifts this for its transaction with SELECT pg_catalog.set_config(''audit.allow_ddl'', pg_catalog.pg_current_xact_id()::text, true).';
        END IF;
    END;
    $function$;
    COMMENT ON FUNCTION audit_guard.refuse_ddl() IS
        'Event trigger function: refuses DDL on schema audit and tables inheriting from its tables (SQLSTATE AU003), unless audit.allow_ddl names the current transaction.';
    REVOKE ALL ON FUNCTION audit_guard.refuse_ddl() FROM PUBLIC;

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_refuse_ddl') THEN
        CREATE EVENT TRIGGER audit_refuse_ddl ON ddl_command_end EXECUTE FUNCTION audit_guard.refuse_ddl();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_refuse_drop') THEN
        CREATE EVENT TRIGGER audit_refuse_drop ON sql_drop EXECUTE FUNCTION audit_guard.refuse_ddl();
    END IF;
    -- As the table triggers: replication sessions do not skip them either.
    ALTER EVENT TRIGGER audit_refuse_ddl ENABLE ALWAYS;
    ALTER EVENT TRIGGER audit_refuse_drop ENABLE ALWAYS;
    COMMENT ON EVENT TRIGGER audit_refuse_ddl IS
        'Refuses CREATE, ALTER (DISABLE TRIGGER included) and other DDL on schema audit, and tables inheriting from its tables; lifted for one transaction by setting audit.allow_ddl to its id.';
    COMMENT ON EVENT TRIGGER audit_refuse_drop IS
        'Refuses DROP of anything in schema audit; lifted for one transaction by setting audit.allow_ddl to its id.';
END
$hardening$;

-- The guard as replaced above lifts only for the transaction it names.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;

-- ---- 0010_schema_and_roles.sql: the roles that own the log ----

DO $roles$
BEGIN
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

-- ---- 0020_audit_logs.sql: entries that print small enough to seal ----

-- Sealing and verifying hash the text of details and context, and a few
-- stored bytes can print as a gigabyte: one such entry would make every
-- later seal fail. NOT VALID here, so that writers are not held while the
-- log is scanned; 0010.validate-printable validates.
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_details_printable
    CHECK (pg_catalog.octet_length(details::pg_catalog.text) <= 1048576) NOT VALID;
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_context_printable
    CHECK (pg_catalog.octet_length(context::pg_catalog.text) <= 1048576) NOT VALID;

-- ---- 0075_seal.sql: the turn of audit.seal() ----

-- The turn of audit.seal(): one row, which each seal updates before anything
-- else. Its row lock queues concurrent seals. Only audit_definer may update
-- it, and nobody else may lock it (LOCK TABLE and SELECT ... FOR UPDATE need
-- privileges no other role has), so no login can hold sealing back by
-- holding the lock, as any login could hold an advisory lock.
CREATE TABLE audit.seal_lock (
    seal_count bigint NOT NULL
);

CREATE UNIQUE INDEX seal_lock_one_row ON audit.seal_lock ((true));

INSERT INTO audit.seal_lock (seal_count) VALUES (0);

COMMENT ON TABLE audit.seal_lock IS
    'One row, updated by every audit.seal(): its row lock makes concurrent seals take turns.';
COMMENT ON COLUMN audit.seal_lock.seal_count IS 'How many seals have run (counted from 0009.trust-boundary).';
COMMENT ON INDEX audit.seal_lock_one_row IS 'Keeps the table to one row.';

-- ---- the functions, from sql/ ----

CREATE OR REPLACE FUNCTION audit._refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: audit entries are immutable', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'AU001',
              HINT = 'Audit entries can only be added, with audit.record_audit().';
END;
$$;

CREATE OR REPLACE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    NEW.txid := pg_catalog.txid_current();
    RETURN NEW;
END;
$$;


CREATE OR REPLACE FUNCTION audit._context_uuid(setting text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value pg_catalog.text := pg_catalog.current_setting(setting, true);
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

CREATE OR REPLACE FUNCTION audit._context_extra()
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value pg_catalog.text := pg_catalog.current_setting('audit.context', true);
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

CREATE OR REPLACE FUNCTION audit._context_user(operation text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    acting_user pg_catalog.uuid := audit._context_uuid('audit.user_id');
BEGIN
    IF acting_user IS NULL THEN
        PERFORM audit._require_user(operation);
    END IF;
    RETURN acting_user;
END;
$$;

CREATE OR REPLACE FUNCTION audit.set_context(
    user_id      uuid  DEFAULT NULL,
    company_id   uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL,
    extra        jsonb DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF extra IS NOT NULL AND pg_catalog.jsonb_typeof(extra) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'set_context: extra must be a JSON object, not %', pg_catalog.jsonb_typeof(extra)
            USING ERRCODE = 'AU006', COLUMN = 'extra';
    END IF;
    IF set_context.user_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.user_id', set_context.user_id::pg_catalog.text, true);
    END IF;
    IF set_context.company_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.company_id', set_context.company_id::pg_catalog.text, true);
    END IF;
    IF set_context.franchise_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.franchise_id', set_context.franchise_id::pg_catalog.text, true);
    END IF;
    IF extra IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.context', extra::pg_catalog.text, true);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION audit._require_user(operation text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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

CREATE OR REPLACE FUNCTION audit.enable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO audit.strict_mode (login_role) VALUES (enable_strict_mode.login_role)
ON CONFLICT ((COALESCE(login_role::pg_catalog.oid, 0::pg_catalog.oid))) DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION audit.disable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.strict_mode s
WHERE s.login_role IS NOT DISTINCT FROM disable_strict_mode.login_role;
$$;

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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- A NULL parameter takes its value from the transaction's context (0036_context.sql).
    acting_company   pg_catalog.uuid := COALESCE(record_audit.company_id, audit._context_uuid('audit.company_id'));
    acting_user      pg_catalog.uuid := COALESCE(record_audit.user_id, audit._context_uuid('audit.user_id'));
    acting_franchise pg_catalog.uuid := COALESCE(record_audit.franchise_id, audit._context_uuid('audit.franchise_id'));
    problem pg_catalog.text := audit._entry_problem(acting_company, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  pg_catalog.uuid;
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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry_count integer := pg_catalog.cardinality(company_ids);
    -- NULL elements take their value from the transaction's context (0036_context.sql).
    context_company   pg_catalog.uuid := audit._context_uuid('audit.company_id');
    context_user      pg_catalog.uuid := audit._context_uuid('audit.user_id');
    context_franchise pg_catalog.uuid := audit._context_uuid('audit.franchise_id');
    context_extra     pg_catalog.jsonb := audit._context_extra();
    bad pg_catalog.record;
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

CREATE FUNCTION audit._untrackable(table_name regclass)
RETURNS text
LANGUAGE sql
STABLE
AS $$
SELECT CASE
    WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN pg_catalog.format(
        '%s is partitioned: writes made straight to its partitions would not be recorded; track each partition instead', c.oid::pg_catalog.regclass)
    WHEN c.relispartition THEN pg_catalog.format(
        '%s is a partition: writes made through its parent table would not be recorded', c.oid::pg_catalog.regclass)
    WHEN EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) c.oid) THEN pg_catalog.format(
        '%s has inheritance children: writes made straight to them would not be recorded', c.oid::pg_catalog.regclass)
    WHEN EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid) THEN pg_catalog.format(
        '%s inherits from another table: writes made through the parent would not be recorded', c.oid::pg_catalog.regclass)
END
FROM pg_catalog.pg_class c
WHERE c.oid OPERATOR(pg_catalog.=) table_name
$$;

COMMENT ON FUNCTION audit._untrackable(regclass) IS
    'Why a table cannot be tracked (partitioned, a partition, an inheritance parent or child); NULL when it can.';

-- The transition tables of the tracking triggers are named audit_old and
-- audit_new, names that cannot be schema-qualified. Where a trigger has no
-- such transition table (one created without the REFERENCING clause that
-- enable_tracking() writes), an unqualified audit_new would be looked up in
-- the search_path, and found in pg_temp, where the caller could have put a
-- view that runs its code as audit_definer. These two views, in schema audit,
-- which _track_changes() searches before pg_temp, are what it finds instead:
-- reading either refuses the statement.
CREATE FUNCTION audit._refuse_tracking(why text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'tracking: %', why
        USING ERRCODE = 'AU004';
END;
$$;

COMMENT ON FUNCTION audit._refuse_tracking(text) IS
    'Refuses (AU004) a tracked statement, saying why: read by the views audit.audit_new and audit.audit_old, and by the statement audit._track_changes() builds under a snapshot.';

CREATE VIEW audit.audit_new AS SELECT NULL::pg_catalog.int4 AS missing
    WHERE audit._refuse_tracking('this trigger has no transition table audit_new; only audit.enable_tracking() makes tracking triggers');
CREATE VIEW audit.audit_old AS SELECT NULL::pg_catalog.int4 AS missing
    WHERE audit._refuse_tracking('this trigger has no transition table audit_old; only audit.enable_tracking() makes tracking triggers');

COMMENT ON VIEW audit.audit_new IS
    'What audit._track_changes() finds under the name audit_new when its trigger has no such transition table: reading it refuses the statement.';
COMMENT ON VIEW audit.audit_old IS
    'What audit._track_changes() finds under the name audit_old when its trigger has no such transition table: reading it refuses the statement.';
COMMENT ON COLUMN audit.audit_new.missing IS 'Never read: the view refuses first.';
COMMENT ON COLUMN audit.audit_old.missing IS 'Never read: the view refuses first.';

CREATE OR REPLACE FUNCTION audit._track_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, audit, pg_temp
SET jit = off
SET extra_float_digits = 1
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC'
SET bytea_output = 'hex'
AS $$
DECLARE
    config     pg_catalog.jsonb := TG_ARGV[0]::pg_catalog.jsonb;
    entity     pg_catalog.text := config ->> 'entity';
    action     pg_catalog.text := CASE TG_OP WHEN 'INSERT' THEN 'CREATE_' WHEN 'UPDATE' THEN 'UPDATE_' ELSE 'DELETE_' END
                       || (config ->> 'action_suffix');
    operation  pg_catalog.text := pg_catalog.format('%s on %I.%I', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    key_column pg_catalog.text;
    excluded   pg_catalog.text[];
    visible    pg_catalog.text[];
    row_json   pg_catalog.text;
    built_in   pg_catalog.bool;
    whole      pg_catalog.bool;
    trigger_id pg_catalog.oid;
    old_table  pg_catalog.text;
    new_table  pg_catalog.text;
    -- Under REPEATABLE READ or SERIALIZABLE, the catalog as this
    -- transaction's snapshot shows it may be older than the table.
    snapshot   pg_catalog.bool := pg_catalog.current_setting('transaction_isolation') <> 'read committed';
    problem    pg_catalog.text;
BEGIN
    -- One catalog query, whose plan PL/pgSQL keeps. Columns are known by
    -- number as well as name, so that a renamed column changes nothing: the
    -- key is still found, an excluded column stays excluded under its new
    -- name. A type is built in when its oid is below 16384
    -- (FirstNormalObjectId).
    SELECT pg_catalog.min(c.name) FILTER (WHERE c.is_key),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE c.is_excluded), '{}'),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE NOT c.is_excluded), '{}'),
           pg_catalog.bool_and(c.built_in), pg_catalog.bool_and(c.whole),
           pg_catalog.min(g.oid), pg_catalog.min(g.tgoldtable::pg_catalog.text), pg_catalog.min(g.tgnewtable::pg_catalog.text)
    INTO key_column, excluded, visible, built_in, whole, trigger_id, old_table, new_table
    FROM (SELECT a.attname::pg_catalog.text AS name,
                 a.attnum = (config ->> 'key_attnum')::pg_catalog.int2
                     AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AS is_key,
                 a.attnum = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_attnums')::pg_catalog.int2))
                     OR a.attname::pg_catalog.text = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_columns')))
                     AS is_excluded,
                 a.atttypid < 16384::pg_catalog.oid AS built_in,
                 -- Cheap signs that audit._untrackable() may find a reason; it is asked only then.
                 r.relkind <> 'p' AND NOT r.relispartition AND NOT r.relhassubclass
                     AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid) AS whole
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class r ON r.oid = a.attrelid
          WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped) AS c
    LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = TG_RELID AND g.tgname = TG_NAME;
    -- A trigger made by hand could name its transition tables otherwise, or
    -- swap them, and record what did not happen. Under a snapshot,
    -- pg_get_triggerdef() reads the trigger as it is now.
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER'
       OR old_table IS DISTINCT FROM (CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN 'audit_old' END)
       OR new_table IS DISTINCT FROM (CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN 'audit_new' END)
       OR (snapshot AND pg_catalog.split_part(pg_catalog.pg_get_triggerdef(trigger_id), ' EXECUTE FUNCTION ', 1)
                        IS DISTINCT FROM pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %I.%I %s FOR EACH STATEMENT',
                            TG_NAME, TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
                            (CASE TG_OP WHEN 'INSERT' THEN 'REFERENCING NEW TABLE AS audit_new'
                                        WHEN 'DELETE' THEN 'REFERENCING OLD TABLE AS audit_old'
                                        ELSE 'REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new' END))) THEN
        problem := 'this is not a trigger audit.enable_tracking() made: those fire AFTER each statement,'
                   ' with the transition tables audit_old and audit_new';
    ELSIF NOT whole THEN
        problem := audit._untrackable(TG_RELID);
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%: tracking cannot record this table: %', operation, problem
            USING ERRCODE = 'AU004',
                  HINT = 'Stop tracking it with audit.disable_tracking(), or remove what the message names.';
    END IF;
    IF key_column IS NULL THEN
        RAISE EXCEPTION '%: the column tracking records as entity_id is gone or no longer a uuid', operation
            USING ERRCODE = 'AU004',
                  HINT = 'Run audit.enable_tracking() again for the table, or stop tracking it with audit.disable_tracking().';
    END IF;
    IF NOT built_in OR snapshot THEN
        -- Each column named, with its JSON, in groups of 50 (jsonb_build_object()
        -- takes at most 100 arguments). A value of a built-in type, or of a
        -- domain over one (to_jsonb() looks through domains), as to_jsonb()
        -- writes it, provided it still has the type the catalog gave; any
        -- other as its text, through its type's output function. A column
        -- renamed since the snapshot is not found, and a row with a column
        -- the snapshot does not know (its text, by record_out, differs from
        -- that of the columns named) is refused.
        BEGIN
        -- Where t.x names no column, PostgreSQL reads it as x(t), a function
        -- call: a column of the snapshot renamed or dropped since, and named
        -- like to_jsonb, would call to_jsonb(t) on the whole row. So every
        -- column is first looked up in the catalog caches, which are current:
        -- has_column_privilege() raises undefined_column (below) for a name
        -- the table no longer has.
        WITH columns AS (
            SELECT a.attname, a.attnum, a.atttypid,
                   CASE WHEN z.typtype = 'd' THEN z.typbasetype ELSE z.oid END AS base_type,
                   (pg_catalog.row_number() OVER (ORDER BY a.attnum) - 1) / 50 AS chunk
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_type z ON z.oid = a.atttypid
            WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
              AND pg_catalog.has_column_privilege(TG_RELID, a.attname::pg_catalog.text, 'SELECT') IS NOT NULL
        ), chunks AS (
            SELECT c.chunk,
                   'pg_catalog.jsonb_build_object(' OPERATOR(pg_catalog.||) pg_catalog.string_agg(
                       pg_catalog.format(CASE WHEN c.base_type < 16384::pg_catalog.oid THEN $f$%1$L,
                           CASE WHEN pg_catalog.pg_typeof(t.%1$I) OPERATOR(pg_catalog.=) %2$s::pg_catalog.oid::pg_catalog.regtype
                                THEN pg_catalog.to_jsonb(t.%1$I)
                                ELSE pg_catalog.to_jsonb(CASE WHEN pg_catalog.num_nulls(t.%1$I) OPERATOR(pg_catalog.=) 0
                                                              THEN pg_catalog.format('%%s', t.%1$I) END) END$f$
                           ELSE $f$%1$L, pg_catalog.to_jsonb(CASE WHEN pg_catalog.num_nulls(t.%1$I) OPERATOR(pg_catalog.=) 0
                                                                  THEN pg_catalog.format('%%s', t.%1$I) END)$f$ END,
                           c.attname, c.atttypid),
                       ', ' ORDER BY c.attnum) OPERATOR(pg_catalog.||) ')' AS pairs
            FROM columns c
            GROUP BY c.chunk
        )
        SELECT $f$CASE WHEN pg_catalog.format('%s', t.*) OPERATOR(pg_catalog.=) pg_catalog.format('%s', ROW($f$
               OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c.attname), ', '
                                                                   ORDER BY c.attnum) FROM columns c)
               OPERATOR(pg_catalog.||) ')) THEN '
               OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(k.pairs, ' OPERATOR(pg_catalog.||) '
                                                                   ORDER BY k.chunk) FROM chunks k)
               OPERATOR(pg_catalog.||) $f$ ELSE pg_catalog.to_jsonb(audit._refuse_tracking('the table changed after this transaction''s snapshot was taken; retry in a new transaction')) END$f$
        INTO row_json;
        EXECUTE pg_catalog.format($sql$
            INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
            SELECT COALESCE((c.new_row ->> 'company_id')::pg_catalog.uuid,
                            (SELECT audit._context_uuid('audit.company_id')),
                            audit._missing_company($1, c.key_row ->> $2)),
                   COALESCE((c.new_row ->> 'franchise_id')::pg_catalog.uuid,
                            (SELECT audit._context_uuid('audit.franchise_id'))),
                   (SELECT audit._context_user($1)), $3, $4, (c.key_row ->> $2)::pg_catalog.uuid,
                   c.details, (SELECT audit._context_extra())
            FROM (%s) AS c
            WHERE c.details IS NOT NULL$sql$,
            CASE TG_OP
                WHEN 'INSERT' THEN pg_catalog.format(
                    'SELECT r.j AS new_row, r.j AS key_row, r.j OPERATOR(pg_catalog.-) $5 AS details'
                    ' FROM (SELECT %s AS j FROM audit_new t) AS r', row_json)
                WHEN 'DELETE' THEN pg_catalog.format(
                    'SELECT r.j AS new_row, r.j AS key_row, r.j OPERATOR(pg_catalog.-) $5 AS details'
                    ' FROM (SELECT %s AS j FROM audit_old t) AS r', row_json)
                -- Paired by position, as below.
                ELSE pg_catalog.format(
                    'SELECT n.j AS new_row, n.j AS key_row, d.changes AS details'
                    ' FROM (SELECT pg_catalog.row_number() OVER () AS position, %1$s AS j FROM audit_old t) AS o'
                    ' JOIN (SELECT pg_catalog.row_number() OVER () AS position, %1$s AS j FROM audit_new t) AS n'
                    ' USING (position)'
                    ' CROSS JOIN LATERAL (SELECT pg_catalog.jsonb_object_agg(k.name, pg_catalog.jsonb_build_object('
                    '''old'', o.j -> k.name, ''new'', n.j -> k.name)) AS changes'
                    ' FROM pg_catalog.unnest($6) AS k(name) WHERE (o.j -> k.name) IS DISTINCT FROM (n.j -> k.name)) AS d',
                    row_json)
            END)
        USING operation, key_column, action, entity, excluded, visible;
        EXCEPTION WHEN undefined_column THEN
            -- A column of the snapshot's catalog that the table no longer has.
            RAISE EXCEPTION '%: tracking: the table changed after this transaction''s snapshot was taken', operation
                USING ERRCODE = 'AU004', HINT = 'Retry the statement in a new transaction.';
        END;
        RETURN NULL;
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
        FROM (SELECT pg_catalog.to_jsonb(t.*) AS j FROM audit_new t) AS r;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((r.j ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company(operation, r.j ->> key_column)),
               COALESCE((r.j ->> 'franchise_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user(operation)), action, entity, (r.j ->> key_column)::pg_catalog.uuid,
               r.j - excluded, (SELECT audit._context_extra())
        FROM (SELECT pg_catalog.to_jsonb(t.*) AS j FROM audit_old t) AS r;
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
            FROM (SELECT pg_catalog.row_number() OVER () AS position, pg_catalog.to_jsonb(t.*) AS j
                  FROM audit_old t) AS o
            JOIN (SELECT pg_catalog.row_number() OVER () AS position, pg_catalog.to_jsonb(t.*) AS j
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

CREATE OR REPLACE FUNCTION audit._refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE on %.% is not allowed: the table is tracked, and a TRUNCATE cannot be recorded row by row',
            TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'AU005',
              HINT = pg_catalog.format('DELETE the rows instead, or stop tracking first: SELECT audit.disable_tracking(%L);',
                                       pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
END;
$$;

CREATE OR REPLACE FUNCTION audit.disable_tracking(table_name regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tracking_trigger pg_catalog.name;
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

CREATE OR REPLACE FUNCTION audit.enable_tracking(
    table_name      regclass,
    entity          text   DEFAULT NULL,
    exclude_columns text[] DEFAULT '{}'
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    relation    pg_catalog.record;
    key_columns pg_catalog.text[];
    key_types   pg_catalog.oid[];
    unknown     pg_catalog.text;
    mistyped    pg_catalog.text;
    problem     pg_catalog.text;
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
    problem := audit._untrackable(table_name);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'enable_tracking: %', problem
            USING ERRCODE = 'AU004', COLUMN = 'table_name';
    END IF;

    SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attnum), pg_catalog.array_agg(a.atttypid ORDER BY a.attnum)
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
        ELSE relation.relname::pg_catalog.text
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

CREATE OR REPLACE FUNCTION audit.history(
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

CREATE OR REPLACE FUNCTION audit.search(
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

CREATE OR REPLACE FUNCTION audit._merkle_root(leaves bytea[])
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    level pg_catalog.bytea[];
BEGIN
    IF pg_catalog.cardinality(leaves) = 0 THEN
        RETURN pg_catalog.sha256(''::pg_catalog.bytea);
    END IF;
    SELECT pg_catalog.array_agg(pg_catalog.sha256('\x00'::pg_catalog.bytea OPERATOR(pg_catalog.||) l.leaf) ORDER BY l.n)
    INTO level
    FROM pg_catalog.unnest(leaves) WITH ORDINALITY AS l(leaf, n);
    -- Pairs come from lead() over the unnested level: subscripting the array
    -- in the query would copy it for every node.
    WHILE pg_catalog.cardinality(level) > 1 LOOP
        SELECT pg_catalog.array_agg(
                   CASE WHEN p.right_node IS NULL THEN p.left_node
                        ELSE pg_catalog.sha256('\x01'::pg_catalog.bytea OPERATOR(pg_catalog.||) p.left_node
                                               OPERATOR(pg_catalog.||) p.right_node) END
                   ORDER BY p.n)
        INTO level
        FROM (SELECT x.n, x.node AS left_node, pg_catalog.lead(x.node) OVER (ORDER BY x.n) AS right_node
              FROM pg_catalog.unnest(level) WITH ORDINALITY AS x(node, n)) AS p
        WHERE p.n OPERATOR(pg_catalog.%) 2 OPERATOR(pg_catalog.=) 1;
    END LOOP;
    RETURN level[1];
END;
$$;

CREATE OR REPLACE FUNCTION audit._block_hash(
    company_id  uuid,
    block_no    bigint,
    xid_from    bigint,
    xid_to      bigint,
    entry_count integer,
    merkle_root bytea,
    prev_hash   bytea,
    sealed_at   timestamptz
)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.sha256(
    '\x01'::pg_catalog.bytea
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(company_id)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(block_no)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_from)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_to)
    OPERATOR(pg_catalog.||) pg_catalog.int4send(entry_count)
    OPERATOR(pg_catalog.||) merkle_root
    OPERATOR(pg_catalog.||) prev_hash
    OPERATOR(pg_catalog.||) pg_catalog.int8send(audit._micros(sealed_at))
)
$$;

CREATE OR REPLACE FUNCTION audit.seal()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon   bigint;
    start_at  bigint;
    sealed    pg_catalog.timestamptz := pg_catalog.now();
    batch     pg_catalog.record;
    previous  pg_catalog.record;
    new_no    bigint;
    new_from  bigint;
    root      pg_catalog.bytea;
    zero_hash CONSTANT pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
BEGIN
    -- Wait for our turn. Under REPEATABLE READ or SERIALIZABLE, a seal that
    -- committed after this transaction's snapshot was taken makes the update
    -- fail: its blocks are invisible here, so this call seals nothing rather
    -- than fork the chain, and says so.
    BEGIN
        UPDATE audit.seal_lock s SET seal_count = s.seal_count + 1;
    EXCEPTION WHEN serialization_failure THEN
        RAISE NOTICE 'audit.seal(): another seal committed after this transaction''s snapshot; nothing sealed'
            USING HINT = 'Seal again in a new transaction, or at READ COMMITTED.';
        RETURN;
    END;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit.seal(): audit.seal_lock has lost its row'
            USING ERRCODE = 'AU003', HINT = 'Someone with the owner''s rights removed it: restore it, with one row.';
    END IF;
    horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8;
    -- Every entry below the newest sealed xid_to is sealed, for every company.
    SELECT COALESCE(pg_catalog.max(b.xid_to), 0) INTO start_at FROM audit.blocks b;

    FOR batch IN
        SELECT e.company_id,
               pg_catalog.array_agg(e.id ORDER BY e.id) AS ids,
               pg_catalog.array_agg(e.hash ORDER BY e.id) AS hashes
        -- Two branches rather than one OR, so that each can use the BRIN index.
        FROM (SELECT a.company_id, a.id, audit.entry_hash(a) AS hash
              FROM audit.audit_logs a WHERE a.txid >= start_at AND a.txid < horizon
              UNION ALL
              SELECT a.company_id, a.id, audit.entry_hash(a)
              FROM audit.audit_logs a WHERE a.txid IS NULL AND start_at = 0) AS e
        GROUP BY e.company_id
        ORDER BY e.company_id
    LOOP
        SELECT b.block_no, b.xid_to, b.block_hash INTO previous
        FROM audit.blocks b
        WHERE b.company_id = batch.company_id
        ORDER BY b.block_no DESC
        LIMIT 1;
        new_no := COALESCE(previous.block_no, 0) + 1;
        new_from := COALESCE(previous.xid_to, 0);
        root := audit._merkle_root(batch.hashes);
        INSERT INTO audit.blocks (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes,
                                  merkle_root, prev_hash, block_hash, sealed_at, format)
        VALUES (batch.company_id, new_no, new_from, horizon, batch.ids, batch.hashes, root,
                COALESCE(previous.block_hash, zero_hash),
                audit._block_hash(batch.company_id, new_no, new_from, horizon,
                                  pg_catalog.cardinality(batch.ids), root,
                                  COALESCE(previous.block_hash, zero_hash), sealed),
                sealed, 1);
        company_id := batch.company_id;
        block_no := new_no;
        entry_count := pg_catalog.cardinality(batch.ids);
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION audit.seal() IS
$$Seals every finished, unsealed entry into a new block of its company's chain; returns one row per
block made. Run it on a schedule: pg_cron, cron with psql, or `audit-py seal --watch SECONDS`.
Entries of transactions still open are left for a later call. Concurrent calls take turns; one
whose snapshot predates the last seal (REPEATABLE READ, SERIALIZABLE) seals nothing, with a NOTICE.$$;

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
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
    ('audit._refuse_change()', '60d1a65caa43b1f954e013e0f6c023b52aa9029381bca78ba973835c0b4b1f9e'),
    ('audit._stamp_entry()', 'a6769bf2dd97358082a6930aba0dfc666014c9d0339bdb7fa8b432c4230a8d4f'),
    ('audit._context_uuid(text)', '33a6d3e1142b0be3713839242c3ea9977d7387299880768bbc9b0007b87320ca'),
    ('audit._context_user(text)', '78d8f5a770eceda0c9079a7340f8e3d57188e0cc42614406cc11ad71dce7d8dd'),
    ('audit._context_extra()', '908a9f6c09482249c86962eedb9fbbef6cae33755e7f4770da5e7b734702853d'),
    ('audit._require_user(text)', 'e8bef3fb1001c2a60b244686d67b4da2e2f8709dfc040c2cc4397ebfdf260e57'),
    ('audit._entry_problem(uuid,text,text,uuid,jsonb)', '7fd1a507835b9058340df3be9388841b0a0f4a5e1abc1482ad74f0dac9042dab'),
    ('audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '2c5d849f4601b6943d9f32e022ddb360bc89f17a5ce2835170d9d84d00a2e8a9'),
    ('audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', '55388e08b680d1771ac6bd8703ace635038ec21a9f49240fa0732512b91862a8'),
    ('audit._missing_company(text,text)', '3e2e99b6c7368988df6596047fdf2baba0a213e2b9a7ebd7f519dffb92549fa1'),
    ('audit._track_changes()', 'b1ab9483b016f715eb2f0425125a27a775154e92532917a235f8bdb8fb0f113f'),
    ('audit._untrackable(regclass)', 'be4a3e2a9beffbd9276f4360865895edd879166f3b5aabd9f8adf29afa5aa486'),
    ('audit._refuse_tracking(text)', '05b9a8d90f6be7cc436a1ab51499fe7df0c4d1053bd69dfe23cc68769c0a47e7'),
    ('audit._refuse_truncate()', '329b7d205b6bc7aa951a86d79378326cb27af14ac99b13246311bda196cff23d'),
    ('audit._str_bytes(text)', '3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518'),
    ('audit._opt_uuid_bytes(uuid)', '80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de'),
    ('audit._micros(timestamp with time zone)', '205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715'),
    ('audit.entry_hash(audit.audit_logs)', '0dd7c1be918428bad5f1965cbe63ec085a279e837dec273103418022e119ccb2'),
    ('audit._merkle_root(bytea[])', 'b7680745e537e2c63f0fddc9bc41b1277eae6b9369d306f44ea431e665340e41'),
    ('audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', '8067120b9910f7c2b6d7097c23d141b077c3bdf98639d37d9db218a66841b785'),
    ('audit.seal()', '3c08b5b60a7a5a690c2b72e344fc7697e98a0779f97b17eddc996c36e06bbca2')
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

CREATE OR REPLACE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem     pg_catalog.text;
    chain       audit.blocks[];
    blk         audit.blocks;
    broken_at   integer;
    broken_why  pg_catalog.text;
    prev        pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    froms       bigint[] := '{}';
    sealed_to   bigint := 0;
    entries     bigint := 0;
    unsealed    bigint;
    orphan      pg_catalog.uuid;
    bucket      pg_catalog.record;
    stored_ix   integer;
    actual_ix   integer;
    actual_n    integer;
BEGIN
    SELECT pg_catalog.string_agg(p, '; ') INTO problem FROM audit._protection_problems() AS p;
    IF problem IS NOT NULL THEN
        RETURN QUERY SELECT false, 'The protections of the log were tampered with: ' OPERATOR(pg_catalog.||) problem,
                            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;

    -- Pass 1, the chain alone: numbering, ranges, links, Merkle roots, block hashes.
    SELECT COALESCE(pg_catalog.array_agg(b ORDER BY b.block_no), '{}') INTO chain
    FROM audit.blocks b WHERE b.company_id = verify.company_id;
    FOR i IN 1 .. pg_catalog.cardinality(chain) LOOP
        blk := chain[i];
        IF blk.block_no OPERATOR(pg_catalog.<>) i THEN
            broken_why := pg_catalog.format('block %s is missing: the chain goes from block %s to block %s', i, i - 1, blk.block_no);
        ELSIF blk.prev_hash OPERATOR(pg_catalog.<>) prev OR blk.xid_from OPERATOR(pg_catalog.<>) sealed_to THEN
            broken_why := pg_catalog.format('block %s does not follow block %s: the chain was cut, reordered or rewritten here', i, i - 1);
        ELSIF audit._merkle_root(blk.entry_hashes) OPERATOR(pg_catalog.<>) blk.merkle_root
              OR audit._block_hash(blk.company_id, blk.block_no, blk.xid_from, blk.xid_to,
                                   pg_catalog.cardinality(blk.entry_ids), blk.merkle_root, blk.prev_hash,
                                   blk.sealed_at) OPERATOR(pg_catalog.<>) blk.block_hash THEN
            broken_why := pg_catalog.format('block %s was rewritten: its contents no longer match its hash', i);
        END IF;
        IF broken_why IS NOT NULL THEN
            broken_at := i;
            EXIT;
        END IF;
        froms := froms OPERATOR(pg_catalog.||) blk.xid_from;
        prev := blk.block_hash;
        sealed_to := blk.xid_to;
    END LOOP;

    -- Pass 2, the entries of the sound part of the chain, in one scan, each
    -- bucketed by the block whose range holds its txid.
    actual_n := 0;
    FOR bucket IN
        SELECT pg_catalog.width_bucket(COALESCE(a.txid, 0), froms) AS n,
               pg_catalog.array_agg(a.id ORDER BY a.id) AS ids,
               pg_catalog.array_agg(audit.entry_hash(a) ORDER BY a.id) AS hashes
        FROM audit.audit_logs a
        WHERE a.company_id = verify.company_id AND COALESCE(a.txid, 0) < sealed_to
        GROUP BY 1
        ORDER BY 1
    LOOP
        -- A block with no bucket lost all its entries.
        FOR i IN actual_n + 1 .. bucket.n - 1 LOOP
            RETURN QUERY SELECT false, pg_catalog.format(
                'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
                i, verify.company_id, chain[i].entry_ids[1]), i::pg_catalog.int8, chain[i].entry_ids[1];
            RETURN;
        END LOOP;
        actual_n := bucket.n;
        blk := chain[bucket.n];
        IF bucket.ids IS DISTINCT FROM blk.entry_ids OR bucket.hashes IS DISTINCT FROM blk.entry_hashes THEN
            -- Walk both id-ordered lists to name the first entry that differs.
            stored_ix := 1;
            actual_ix := 1;
            LOOP
                IF stored_ix > pg_catalog.cardinality(blk.entry_ids)
                   OR (actual_ix <= pg_catalog.cardinality(bucket.ids)
                       AND bucket.ids[actual_ix] OPERATOR(pg_catalog.<) blk.entry_ids[stored_ix]) THEN
                    RETURN QUERY SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was not sealed in this block; it was inserted afterwards.',
                        blk.block_no, verify.company_id, bucket.ids[actual_ix]), blk.block_no, bucket.ids[actual_ix];
                    RETURN;
                ELSIF actual_ix > pg_catalog.cardinality(bucket.ids)
                      OR bucket.ids[actual_ix] OPERATOR(pg_catalog.>) blk.entry_ids[stored_ix] THEN
                    RETURN QUERY SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
                        blk.block_no, verify.company_id, blk.entry_ids[stored_ix]), blk.block_no, blk.entry_ids[stored_ix];
                    RETURN;
                ELSIF bucket.hashes[actual_ix] OPERATOR(pg_catalog.<>) blk.entry_hashes[stored_ix] THEN
                    RETURN QUERY SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was changed after it was sealed.',
                        blk.block_no, verify.company_id, blk.entry_ids[stored_ix]), blk.block_no, blk.entry_ids[stored_ix];
                    RETURN;
                END IF;
                stored_ix := stored_ix + 1;
                actual_ix := actual_ix + 1;
            END LOOP;
        END IF;
        entries := entries + pg_catalog.cardinality(blk.entry_ids);
    END LOOP;
    FOR i IN actual_n + 1 .. pg_catalog.cardinality(froms) LOOP
        RETURN QUERY SELECT false, pg_catalog.format(
            'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
            i, verify.company_id, chain[i].entry_ids[1]), i::pg_catalog.int8, chain[i].entry_ids[1];
        RETURN;
    END LOOP;

    IF broken_at IS NOT NULL THEN
        RETURN QUERY SELECT false, pg_catalog.format('Company %s: %s.', verify.company_id, broken_why),
                            broken_at::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;

    -- audit.seal() seals every company up to the same horizon: an entry below
    -- the newest horizon that no block holds lost its block, or came later.
    SELECT a.id INTO orphan FROM audit.audit_logs a
    WHERE a.company_id = verify.company_id AND COALESCE(a.txid, 0) >= sealed_to
      AND COALESCE(a.txid, 0) < (SELECT pg_catalog.max(b.xid_to) FROM audit.blocks b)
    ORDER BY a.id
    LIMIT 1;
    IF orphan IS NOT NULL THEN
        RETURN QUERY SELECT false, pg_catalog.format(
            'Company %s: entry %s lies in a sealed range but no block holds it: the company''s last block was removed, or the entry inserted afterwards.',
            verify.company_id, orphan), NULL::pg_catalog.int8, orphan;
        RETURN;
    END IF;

    SELECT pg_catalog.count(*) INTO unsealed FROM audit.audit_logs a
    WHERE a.company_id = verify.company_id AND COALESCE(a.txid, 0) >= sealed_to;
    RETURN QUERY SELECT true, pg_catalog.format(
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections in place.',
        verify.company_id, pg_catalog.cardinality(froms), entries, unsealed), NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
END;
$$;

CREATE OR REPLACE FUNCTION audit.digest()
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.jsonb_build_object(
    'format', 1,
    'database', pg_catalog.current_database(),
    'taken_at', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'chains', COALESCE(pg_catalog.jsonb_object_agg(head.company_id, pg_catalog.jsonb_build_object(
        'block_no', head.block_no,
        'block_hash', pg_catalog.encode(head.block_hash, 'hex'),
        'xid_to', head.xid_to)), '{}'::pg_catalog.jsonb))
FROM (
    SELECT DISTINCT ON (b.company_id) b.company_id, b.block_no, b.block_hash, b.xid_to
    FROM audit.blocks b
    ORDER BY b.company_id, b.block_no DESC
) AS head
$$;

CREATE OR REPLACE FUNCTION audit._pinned_companies()
RETURNS uuid[]
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.array_agg(p.company_id)
FROM audit.tenant_logins p
WHERE pg_catalog.pg_has_role(session_user, p.login_role::pg_catalog.oid, 'MEMBER')
$$;

CREATE OR REPLACE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO audit.tenant_logins (login_role, company_id) VALUES (pin_tenant.login_role, pin_tenant.company_id)
ON CONFLICT DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION audit.unpin_tenant(login_role regrole, company_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.tenant_logins p
WHERE p.login_role = unpin_tenant.login_role AND (unpin_tenant.company_id IS NULL OR p.company_id = unpin_tenant.company_id);
$$;


-- ---- 0055_tracking.sql: tracked_tables tells impostor triggers ----

CREATE OR REPLACE VIEW audit.tracked_tables AS
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
       -- Each of the four as enable_tracking() made it: the same event, timing,
       -- function and transition tables, no WHEN clause or column list, and
       -- enabled for ordinary sessions (not disabled, not replica only).
       (SELECT pg_catalog.count(*) = 4
        FROM pg_catalog.pg_trigger t
        JOIN (VALUES ('audit_track_insert', 4, 'audit._track_changes()'::pg_catalog.regprocedure, NULL, 'audit_new'),
                     ('audit_track_update', 16, 'audit._track_changes()'::pg_catalog.regprocedure, 'audit_old', 'audit_new'),
                     ('audit_track_delete', 8, 'audit._track_changes()'::pg_catalog.regprocedure, 'audit_old', NULL),
                     ('audit_refuse_truncate', 34, 'audit._refuse_truncate()'::pg_catalog.regprocedure, NULL, NULL))
             AS e(name, type, function, old_table, new_table)
          ON t.tgname = e.name AND t.tgtype = e.type AND t.tgfoid = e.function
         AND t.tgoldtable IS NOT DISTINCT FROM e.old_table AND t.tgnewtable IS NOT DISTINCT FROM e.new_table
        WHERE t.tgrelid = tracker.tgrelid AND t.tgenabled IN ('O', 'A') AND t.tgqual IS NULL
          AND pg_catalog.cardinality(t.tgattr::pg_catalog.int2[]) = 0)
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

COMMENT ON COLUMN audit.tracked_tables.triggers_in_place IS
    'False when one of the four tracking triggers was dropped, disabled, enabled for replica sessions only, or replaced by another of its name: enable_tracking() again restores them.';

-- ---- 0092_tenant_readers.sql: audit_definer's policies ----

CREATE POLICY audit_logs_definer_read ON audit.audit_logs FOR SELECT TO audit_definer USING (true);
CREATE POLICY audit_logs_definer_insert ON audit.audit_logs FOR INSERT TO audit_definer WITH CHECK (true);
CREATE POLICY blocks_definer_read ON audit.blocks FOR SELECT TO audit_definer USING (true);
CREATE POLICY blocks_definer_insert ON audit.blocks FOR INSERT TO audit_definer WITH CHECK (true);

COMMENT ON POLICY audit_logs_definer_read ON audit.audit_logs IS
    'audit_definer (the SECURITY DEFINER functions) reads every entry: to seal, verify, and return a new entry''s id.';
COMMENT ON POLICY audit_logs_definer_insert ON audit.audit_logs IS
    'audit_definer (audit.record_audit(), audit.record_audit_many(), tracking) inserts entries.';
COMMENT ON POLICY blocks_definer_read ON audit.blocks IS 'audit_definer (seal, verify, digest) reads every block.';
COMMENT ON POLICY blocks_definer_insert ON audit.blocks IS 'audit_definer (audit.seal()) inserts blocks.';

-- ---- 0090_grants.sql and 0092_tenant_readers.sql: audit_definer and audit_admin ----

-- audit_definer: what the SECURITY DEFINER functions it owns do, and nothing
-- more. Insert entries and blocks, read them to seal, verify and digest,
-- read strict mode (and the tenant pins, 0092_tenant_readers.sql), take its
-- turn to seal; run the helpers those functions call. Row-level security applies to it too
-- (0092_tenant_readers.sql gives it its policies).
GRANT USAGE ON SCHEMA audit TO audit_definer;
GRANT SELECT, INSERT ON audit.audit_logs, audit.blocks TO audit_definer;
GRANT SELECT ON audit.strict_mode TO audit_definer;
GRANT SELECT, UPDATE ON audit.seal_lock TO audit_definer;
-- What _track_changes() finds where a trigger lacks a transition table: reading it refuses.
GRANT SELECT ON audit.audit_new, audit.audit_old TO audit_definer;
GRANT EXECUTE ON FUNCTION audit._context_uuid(text), audit._context_extra(), audit._context_user(text),
                          audit._require_user(text), audit._entry_problem(uuid, text, text, uuid, jsonb),
                          audit._missing_company(text, text), audit._untrackable(regclass),
                          audit._refuse_tracking(text),
                          audit._str_bytes(text), audit._opt_uuid_bytes(uuid), audit._micros(timestamptz),
                          audit.entry_hash(audit.audit_logs), audit._merkle_root(bytea[]),
                          audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz),
                          audit._protection_problems()
    TO audit_definer;

-- audit_admin: seal (pg_cron, cron, audit-py seal --watch) and switch strict
-- mode; 0092_tenant_readers.sql adds pinning tenant logins.
GRANT USAGE ON SCHEMA audit TO audit_admin;
GRANT EXECUTE ON FUNCTION audit.seal(), audit.enable_strict_mode(regrole), audit.disable_strict_mode(regrole)
    TO audit_admin;
GRANT SELECT, INSERT, DELETE ON audit.strict_mode TO audit_admin;

GRANT EXECUTE ON FUNCTION audit.pin_tenant(regrole, uuid), audit.unpin_tenant(regrole, uuid) TO audit_admin;
GRANT SELECT, INSERT, DELETE ON audit.tenant_logins TO audit_admin;
GRANT SELECT ON audit.tenant_logins TO audit_definer;
REVOKE ALL ON FUNCTION audit._untrackable(regclass), audit._refuse_tracking(text) FROM PUBLIC;
-- enable_tracking() runs as its caller, and asks it first.
GRANT EXECUTE ON FUNCTION audit._untrackable(regclass) TO audit_writer;

-- ---- 0098_ownership.sql ----

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
