-- Undoes 0009.trust-boundary. The login that rolls it back owns the log
-- again, as the installing login did before; the functions get back their
-- former definitions, the guard (superuser installs) its former lift; and
-- audit_owner, audit_definer and audit_admin go when nothing else in the
-- cluster refers to them, as in 0001's rollback.
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-view, ban-drop-constraint

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;

-- Taking an object back needs the right to act as its owner: the login holds
-- audit_owner and audit_definer for this transaction, unless it already did.
DO $ownership$
DECLARE
    installer name := current_user;
    taken     name[] := '{}';
    role_name name;
    function_ pg_catalog.regprocedure;
    relation  pg_catalog.regclass;
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
    PERFORM pg_catalog.set_config('audit.rollback_taken', pg_catalog.array_to_string(taken, ','), true);

    EXECUTE pg_catalog.format('ALTER SCHEMA audit OWNER TO %I', installer);
    FOR relation IN
        SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND c.relkind IN ('r', 'v')
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', relation, installer);
    END LOOP;
    FOR function_ IN
        SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', function_, installer);
    END LOOP;
END
$ownership$;

-- BEGIN UNINSTALL CHECK (the same in every rollback: tests/test_uninstall.py)
-- Each rollback may be the first step of an uninstall that ends in 0001's,
-- which drops the log, and yoyo commits each step on its own. So each step
-- refuses, before it changes anything, what any later step would destroy
-- unasked or could not finish: a log with entries needs audit.destroy_entries
-- = on; anything outside the log that depends on it (a view, a function
-- body, a trigger not made by enable_tracking) must go first; tracking stops
-- only by its tables' owners; the guard's event triggers go only with a
-- superuser. The acting login is the one before a preamble's SET ROLE.
DO $uninstall$
DECLARE
    acting    name := CASE WHEN current_user OPERATOR(pg_catalog.=) 'audit_owner'
                           THEN COALESCE(NULLIF(pg_catalog.current_setting('audit.rollback_login', true), ''),
                                         current_user)
                           ELSE current_user END;
    audit_ns  pg_catalog.oid := 'audit'::pg_catalog.regnamespace;
    tracked   pg_catalog.regclass;
    dependent pg_catalog.text;
BEGIN
    IF pg_catalog.current_setting('audit.destroy_entries', true) IS DISTINCT FROM 'on'
       AND EXISTS (SELECT FROM audit.audit_logs) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations would destroy its entries'
            USING ERRCODE = 'AU009',
                  HINT = 'Export them first (audit-py export), then confirm with the setting audit.destroy_entries = on '
                         '(audit-py uninstall --destroy-entries, or PGOPTIONS=''-c audit.destroy_entries=on'' for yoyo).';
    END IF;
    SELECT o.type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) o.identity INTO dependent
    FROM pg_catalog.pg_depend d, pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
    WHERE d.deptype IN ('n', 'a')
      AND d.refobjid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) audit_ns
                         UNION ALL
                         SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) audit_ns
                         UNION ALL
                         SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) audit_ns)
      AND COALESCE(CASE d.classid
            WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
                (SELECT p.pronamespace FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
                (SELECT t.typnamespace FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
                 WHERE g.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
                 WHERE r.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_policy y JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) y.polrelid
                 WHERE y.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN
                (SELECT c.relnamespace FROM pg_catalog.pg_attrdef a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.adrelid
                 WHERE a.oid OPERATOR(pg_catalog.=) d.objid)
            WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
                (SELECT k.connamespace FROM pg_catalog.pg_constraint k WHERE k.oid OPERATOR(pg_catalog.=) d.objid)
          END, 0) OPERATOR(pg_catalog.<>) audit_ns
      -- The triggers of tracking, name and function as enable_tracking() makes them: 0005's
      -- rollback drops them with disable_tracking(), which their table's owner must run (below).
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                      WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
                        AND g.oid OPERATOR(pg_catalog.=) d.objid
                        AND ((g.tgname IN ('audit_track_insert', 'audit_track_update', 'audit_track_delete')
                              AND g.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('audit._track_changes()'))
                             OR (g.tgname OPERATOR(pg_catalog.=) 'audit_refuse_truncate'
                                 AND g.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('audit._refuse_truncate()'))))
    ORDER BY 1
    LIMIT 1;
    IF dependent IS NOT NULL THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations would stop at % outside the log, which depends on it', dependent
            USING ERRCODE = 'AU009',
                  HINT = 'Drop it (or what it belongs to) first: the log''s objects cannot go while it needs them.';
    END IF;
    IF pg_catalog.to_regprocedure('audit._track_changes()') IS NOT NULL THEN
        SELECT t.tgrelid::pg_catalog.regclass INTO tracked
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
        -- Every table 0005's rollback will call disable_tracking() on.
        WHERE t.tgfoid IN (pg_catalog.to_regprocedure('audit._track_changes()'),
                           pg_catalog.to_regprocedure('audit._refuse_truncate()'))
          AND NOT pg_catalog.pg_has_role(acting, c.relowner, 'USAGE')
        ORDER BY 1
        LIMIT 1;
        IF tracked IS NOT NULL THEN
            RAISE EXCEPTION 'rolling back the audit log''s migrations stops tracking %, which this login does not own', tracked
                USING ERRCODE = 'AU009',
                      HINT = pg_catalog.format('Have its owner run SELECT audit.disable_tracking(%L) first.', tracked);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname IN ('audit_refuse_ddl', 'audit_refuse_drop'))
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) acting) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations drops the DDL guard''s event triggers, which needs a superuser'
            USING ERRCODE = 'AU009';
    END IF;
END
$uninstall$;
-- END UNINSTALL CHECK

DROP POLICY blocks_definer_insert ON audit.blocks;
DROP POLICY blocks_definer_read ON audit.blocks;
DROP POLICY audit_logs_definer_insert ON audit.audit_logs;
DROP POLICY audit_logs_definer_read ON audit.audit_logs;
DROP TABLE audit.seal_lock;
ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_context_printable;
ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_details_printable;
DROP VIEW audit.audit_new;
DROP VIEW audit.audit_old;

-- ---- the functions as 0008.reading-indexes left them ----

CREATE OR REPLACE FUNCTION audit._refuse_change()
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

CREATE OR REPLACE FUNCTION audit._context_uuid(setting text)
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

CREATE OR REPLACE FUNCTION audit._context_extra()
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

CREATE OR REPLACE FUNCTION audit._context_user(operation text)
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

CREATE OR REPLACE FUNCTION audit.set_context(
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

CREATE OR REPLACE FUNCTION audit._require_user(operation text)
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

CREATE OR REPLACE FUNCTION audit.enable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
INSERT INTO audit.strict_mode (login_role) VALUES (enable_strict_mode.login_role)
ON CONFLICT ((COALESCE(login_role::pg_catalog.oid, 0::pg_catalog.oid))) DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION audit.disable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
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

CREATE OR REPLACE FUNCTION audit._track_changes()
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

CREATE OR REPLACE FUNCTION audit._refuse_truncate()
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

CREATE OR REPLACE FUNCTION audit.disable_tracking(table_name regclass)
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

CREATE OR REPLACE FUNCTION audit.enable_tracking(
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

CREATE OR REPLACE FUNCTION audit._merkle_root(leaves bytea[])
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = ''
AS $$
DECLARE
    level bytea[];
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
SET search_path = ''
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
SET search_path = ''
AS $$
DECLARE
    horizon   bigint;
    start_at  bigint;
    sealed    timestamptz := pg_catalog.now();
    batch     record;
    previous  record;
    new_no    bigint;
    new_from  bigint;
    root      bytea;
    zero_hash CONSTANT bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
BEGIN
    -- The key is the first 8 bytes of md5('audit.seal'): ours alone.
    PERFORM pg_catalog.pg_advisory_xact_lock(6467206942688935610);
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
Entries of transactions still open are left for a later call.$$;

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

CREATE OR REPLACE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    problem     text;
    chain       audit.blocks[];
    blk         audit.blocks;
    broken_at   integer;
    broken_why  text;
    prev        bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    froms       bigint[] := '{}';
    sealed_to   bigint := 0;
    entries     bigint := 0;
    unsealed    bigint;
    orphan      uuid;
    bucket      record;
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
SET search_path = ''
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
SET search_path = ''
AS $$
SELECT pg_catalog.array_agg(p.company_id)
FROM audit.tenant_logins p
WHERE pg_catalog.pg_has_role(session_user, p.login_role::pg_catalog.oid, 'MEMBER')
$$;

CREATE OR REPLACE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
INSERT INTO audit.tenant_logins (login_role, company_id) VALUES (pin_tenant.login_role, pin_tenant.company_id)
ON CONFLICT DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION audit.unpin_tenant(login_role regrole, company_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
DELETE FROM audit.tenant_logins p
WHERE p.login_role = unpin_tenant.login_role AND (unpin_tenant.company_id IS NULL OR p.company_id = unpin_tenant.company_id);
$$;


CREATE OR REPLACE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    NEW.txid := pg_catalog.txid_current();
    RETURN NEW;
END;
$$;

DROP FUNCTION audit._untrackable(regclass);
DROP FUNCTION audit._refuse_tracking(text);

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

COMMENT ON COLUMN audit.tracked_tables.triggers_in_place IS
    'False when one of the four tracking triggers was dropped or disabled: enable_tracking() again restores them.';


REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM audit_definer, audit_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM audit_definer, audit_admin;
REVOKE ALL ON SCHEMA audit FROM audit_definer, audit_admin;

-- The guard of 0004.hardening, where a superuser installed it and rolls back.
DO $hardening$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'audit_guard') THEN
        RETURN;
    END IF;
    CREATE OR REPLACE FUNCTION audit_guard.refuse_ddl()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
    AS $function$
    DECLARE
        target record;
    BEGIN
        IF pg_catalog.current_setting('audit.allow_ddl', true) = 'on' THEN
            RETURN;
        END IF;
        IF TG_EVENT = 'sql_drop' THEN
            SELECT o.object_identity, TG_TAG AS command INTO target
            FROM pg_catalog.pg_event_trigger_dropped_objects() o
            WHERE o.schema_name = 'audit' OR (o.object_type = 'schema' AND o.object_name = 'audit')
            LIMIT 1;
        ELSE
            -- Triggers, rules and policies have no schema of their own: their table's counts.
            SELECT c.object_identity, c.command_tag AS command INTO target
            FROM pg_catalog.pg_event_trigger_ddl_commands() c
            WHERE c.schema_name = 'audit'
               OR 'audit'::pg_catalog.regnamespace IN (
                   SELECT r.relnamespace FROM pg_catalog.pg_class r
                   WHERE r.oid IN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t
                                   WHERE c.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = c.objid
                                   UNION ALL
                                   SELECT w.ev_class FROM pg_catalog.pg_rewrite w
                                   WHERE c.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = c.objid
                                   UNION ALL
                                   SELECT o.polrelid FROM pg_catalog.pg_policy o
                                   WHERE c.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND o.oid = c.objid))
            LIMIT 1;
        END IF;
        IF target.object_identity IS NOT NULL THEN
            RAISE EXCEPTION '% on % is not allowed: schema audit is protected', target.command, target.object_identity
                USING ERRCODE = 'AU003',
                      HINT = 'A DBA applying a migration may SET LOCAL audit.allow_ddl = on first.';
        END IF;
    END;
    $function$;
    COMMENT ON FUNCTION audit_guard.refuse_ddl() IS
        'Event trigger function: refuses DDL on schema audit (SQLSTATE AU003) unless audit.allow_ddl is on.';
    COMMENT ON EVENT TRIGGER audit_refuse_ddl IS
        'Refuses CREATE, ALTER (DISABLE TRIGGER included) and other DDL on schema audit; SET LOCAL audit.allow_ddl = on lifts it.';
    COMMENT ON EVENT TRIGGER audit_refuse_drop IS
        'Refuses DROP of anything in schema audit; SET LOCAL audit.allow_ddl = on lifts it.';
END
$hardening$;

DO $roles$
DECLARE
    role_name name;
    taken     name[] := pg_catalog.string_to_array(pg_catalog.current_setting('audit.rollback_taken'), ',');
BEGIN
    FOREACH role_name IN ARRAY ARRAY['audit_admin', 'audit_definer', 'audit_owner']::name[] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name);
        IF EXISTS (
            SELECT FROM pg_catalog.pg_shdepend d
            JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
            WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
              AND r.rolname = role_name
        ) THEN
            RAISE NOTICE 'role % kept: objects in this cluster still refer to it', role_name;
        ELSE
            BEGIN
                EXECUTE pg_catalog.format('DROP ROLE %I', role_name);
                CONTINUE;
            EXCEPTION WHEN insufficient_privilege OR dependent_objects_still_exist THEN
                RAISE NOTICE 'role % kept: %', role_name, SQLERRM;
            END;
        END IF;
        -- Roles and their members are cluster-wide: while another database holds
        -- a log (objects owned by audit_owner there), the installing login keeps
        -- audit_admin, which that log may need; else it gives the role back.
        IF role_name = ANY (taken) THEN
            EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
        ELSIF role_name = 'audit_admin' AND pg_catalog.pg_has_role(current_user, role_name, 'MEMBER')
              AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
              AND NOT EXISTS (
                  SELECT FROM pg_catalog.pg_shdepend d
                  JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
                  WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
                    AND d.deptype = 'o' AND r.rolname = 'audit_owner'
                    AND d.dbid <> (SELECT b.oid FROM pg_catalog.pg_database b
                                   WHERE b.datname = pg_catalog.current_database())) THEN
            EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
        END IF;
    END LOOP;
END
$roles$;
