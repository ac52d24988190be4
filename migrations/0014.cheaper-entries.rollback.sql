-- Undoes 0014.cheaper-entries: the stamp, its privileges and tracking as 0013 left them.
-- Entries keep the ids they were given. The defaults of txid and origin go: before 0014 they had
-- none, the trigger set them.
-- squawk-ignore-file ban-drop-default, ban-drop-function

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as its roles for this
-- transaction only; seal() and verify() belong to audit_definer.
DO $take$
DECLARE
    role_name name;
    taken     text[] := '{}';
BEGIN
    FOREACH role_name IN ARRAY ARRAY['audit_owner', 'audit_definer']::name[] LOOP
        IF NOT (CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000
                     THEN pg_catalog.pg_has_role(current_user, role_name, 'SET')
                     ELSE pg_catalog.pg_has_role(current_user, role_name, 'MEMBER') END) THEN
            EXECUTE pg_catalog.format('GRANT %I TO %I', role_name, current_user);
            taken := taken || role_name::text;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('audit.roles_taken', pg_catalog.array_to_string(taken, ','), true);
END $take$;
-- The uninstall check below judges this login, not audit_owner.
DO $login$ BEGIN PERFORM pg_catalog.set_config('audit.rollback_login', current_user, true); END $login$;
SET LOCAL ROLE audit_owner;

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

ALTER TABLE audit.audit_logs
    ALTER COLUMN id SET DEFAULT pg_catalog.gen_random_uuid(),
    ALTER COLUMN txid DROP DEFAULT,
    ALTER COLUMN origin DROP DEFAULT;

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
    NEW.origin := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    RETURN NEW;
END;
$$;

DROP TRIGGER audit_logs_stamp ON audit.audit_logs;
CREATE TRIGGER audit_logs_stamp
    BEFORE INSERT ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry();
COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id, created_at, txid and origin of every new entry, but in replication sessions, which keep the publisher''s.';

REVOKE INSERT (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    ON audit.audit_logs FROM audit_definer;
GRANT INSERT ON audit.audit_logs TO audit_definer;

DROP FUNCTION audit._new_entry_id();

CREATE OR REPLACE FUNCTION audit._untrackable(table_name regclass)
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

GRANT CREATE ON SCHEMA audit TO audit_definer;
SET LOCAL ROLE audit_definer;

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

SET LOCAL ROLE audit_owner;
REVOKE CREATE ON SCHEMA audit FROM audit_definer;

CREATE OR REPLACE FUNCTION audit._surface()
RETURNS TABLE (object text, description text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
-- The text of names and definitions depends on it, not on the caller's choice.
SET quote_all_identifiers = off
AS $surface$
WITH
spaces AS (
    SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname IN ('audit', 'audit_guard')
),
who (oid, name) AS (
    SELECT r.oid, CASE WHEN r.rolsuper THEN 'a superuser' ELSE r.rolname::text END FROM pg_catalog.pg_roles r
    UNION ALL
    SELECT 0, 'PUBLIC'
),
relations AS (
    SELECT c.* FROM pg_catalog.pg_class c JOIN spaces s ON s.oid = c.relnamespace
),
schema_rows AS (
    SELECT 'schema ' || s.nspname,
           'owner ' || COALESCE((SELECT w.name FROM who w WHERE w.oid = n.nspowner), 'no role ' || n.nspowner::text)
           || E'\nprivileges ' || COALESCE(acl.items, 'none')
    FROM spaces s
    JOIN pg_catalog.pg_namespace n ON n.oid = s.oid
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(g.item, ',' ORDER BY g.item) AS items
        FROM (SELECT COALESCE(w.name, 'no role ' || a.grantee::text) || '=' || a.privilege_type
                     || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item
              FROM pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
              LEFT JOIN who w ON w.oid = a.grantee
              WHERE a.grantee <> n.nspowner) g
    ) acl
),
relation_rows AS (
    SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'partitioned table ' WHEN 'v' THEN 'view '
                          WHEN 'm' THEN 'materialized view ' WHEN 'i' THEN 'index ' WHEN 'I' THEN 'partitioned index '
                          WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table ' WHEN 'c' THEN 'composite type '
                          ELSE 'relation ' END
           || c.oid::pg_catalog.regclass::text,
           pg_catalog.concat_ws(E'\n',
               'kind ' || c.relkind::text || ', persistence ' || c.relpersistence::text || ', partition ' || c.relispartition,
               'owner ' || COALESCE((SELECT w.name FROM who w WHERE w.oid = c.relowner), 'no role ' || c.relowner::text),
               'privileges ' || COALESCE(acl.items, 'none'),
               'row level security ' || c.relrowsecurity || ', forced ' || c.relforcerowsecurity,
               'has triggers ' || c.relhastriggers || ', has rules ' || c.relhasrules,
               CASE WHEN c.relkind IN ('v', 'm') THEN 'options ' || COALESCE(c.reloptions::text, '{}') END,
               CASE WHEN c.relkind IN ('v', 'm') THEN 'definition ' || pg_catalog.pg_get_viewdef(c.oid) END,
               CASE WHEN c.relkind IN ('i', 'I') THEN
                   (SELECT 'index ' || pg_catalog.pg_get_indexdef(x.indexrelid)
                           || CASE WHEN x.indisunique THEN ', unique' || CASE WHEN x.indisvalid THEN '' ELSE ', not valid' END
                                   ELSE '' END
                           || CASE WHEN x.indisprimary THEN ', primary key' ELSE '' END
                           || CASE WHEN x.indimmediate THEN '' ELSE ', deferred' END
                    FROM pg_catalog.pg_index x WHERE x.indexrelid = c.oid) END,
               cols.lines, cons.lines, trigs.lines, pols.lines, rules.lines, parents.lines, children.lines)
    FROM relations c
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(g.item, ',' ORDER BY g.item) AS items
        FROM (SELECT COALESCE(w.name, 'no role ' || a.grantee::text) || '=' || a.privilege_type
                     || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item
              -- A composite type's privileges are its type's (USAGE), not its relation's.
              FROM pg_catalog.aclexplode(CASE WHEN c.relkind = 'c'
                 THEN COALESCE((SELECT y.typacl FROM pg_catalog.pg_type y WHERE y.oid = c.reltype),
                               pg_catalog.acldefault('T', c.relowner))
                 ELSE COALESCE(c.relacl, pg_catalog.acldefault(
                     CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) END) a
              LEFT JOIN who w ON w.oid = a.grantee
              WHERE a.grantee <> c.relowner) g
    ) acl
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', 'column', pg_catalog.quote_ident(t.attname),
                   pg_catalog.format_type(t.atttypid, t.atttypmod),
                   CASE WHEN t.attnotnull THEN 'not null' END,
                   CASE WHEN t.attcollation <> (SELECT y.typcollation FROM pg_catalog.pg_type y WHERE y.oid = t.atttypid)
                        THEN 'collate ' || (SELECT pg_catalog.quote_ident(l.collname) FROM pg_catalog.pg_collation l
                                            WHERE l.oid = t.attcollation) END,
                   CASE WHEN t.attidentity <> '' THEN 'identity ' || t.attidentity::text END,
                   CASE WHEN t.attgenerated <> '' THEN 'generated ' || t.attgenerated::text END,
                   'default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                   'privileges ' || (
                       SELECT pg_catalog.string_agg(g.item, ',' ORDER BY g.item)
                       FROM (SELECT COALESCE(w.name, 'no role ' || a.grantee::text) || '=' || a.privilege_type
                     || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item
                             FROM pg_catalog.aclexplode(t.attacl) a
                             LEFT JOIN who w ON w.oid = a.grantee) g)),
               E'\n' ORDER BY t.attnum) AS lines
        FROM pg_catalog.pg_attribute t
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = t.attrelid AND d.adnum = t.attnum
        WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped AND c.relkind NOT IN ('i', 'I')
    ) cols
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg('constraint ' || pg_catalog.quote_ident(k.conname) || ' '
                                     || pg_catalog.pg_get_constraintdef(k.oid)
                                     || CASE WHEN k.convalidated THEN '' ELSE ', not valid' END
                                     || CASE WHEN k.condeferrable THEN ', deferrable' ELSE '' END,
                                     E'\n' ORDER BY k.conname) AS lines
        FROM pg_catalog.pg_constraint k
        -- PostgreSQL 18 lists NOT NULL as constraints too; the column says it.
        WHERE k.conrelid = c.oid AND NOT (k.contype = 'n' AND k.convalidated)
    ) cons
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg('trigger ' || pg_catalog.quote_ident(g.tgname) || ' enabled ' || g.tgenabled::text
                                     || CASE WHEN g.tgisinternal THEN ', internal' ELSE '' END
                                     || ': ' || pg_catalog.pg_get_triggerdef(g.oid),
                                     E'\n' ORDER BY g.tgname) AS lines
        FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid
    ) trigs
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', 'policy', pg_catalog.quote_ident(o.polname),
                   CASE WHEN o.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                   'for ' || o.polcmd::text,
                   'to ' || (SELECT pg_catalog.string_agg(COALESCE(w.name, 'no role ' || r::text), ','
                                                     ORDER BY COALESCE(w.name, 'no role ' || r::text))
                             FROM pg_catalog.unnest(o.polroles) r LEFT JOIN who w ON w.oid = r),
                   'using (' || pg_catalog.pg_get_expr(o.polqual, o.polrelid) || ')',
                   'with check (' || pg_catalog.pg_get_expr(o.polwithcheck, o.polrelid) || ')'),
               E'\n' ORDER BY o.polname) AS lines
        FROM pg_catalog.pg_policy o WHERE o.polrelid = c.oid
    ) pols
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg('rule ' || pg_catalog.quote_ident(u.rulename) || ' enabled ' || u.ev_enabled::text
                                     || ': ' || pg_catalog.pg_get_ruledef(u.oid),
                                     E'\n' ORDER BY u.rulename) AS lines
        FROM pg_catalog.pg_rewrite u WHERE u.ev_class = c.oid AND u.rulename <> '_RETURN'
    ) rules
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg('inherits from ' || i.inhparent::pg_catalog.regclass::text, E'\n'
                                     ORDER BY i.inhseqno) AS lines
        FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid
    ) parents
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg('inherited by ' || i.inhrelid::pg_catalog.regclass::text, E'\n'
                                     ORDER BY i.inhrelid::pg_catalog.regclass::text) AS lines
        FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid
    ) children
),
function_rows AS (
    SELECT 'function ' || p.oid::pg_catalog.regprocedure::text,
           pg_catalog.concat_ws(E'\n',
               'kind ' || p.prokind::text || ', language ' || l.lanname,
               'arguments ' || pg_catalog.pg_get_function_arguments(p.oid),
               'returns ' || COALESCE(pg_catalog.pg_get_function_result(p.oid), ''),
               'volatility ' || p.provolatile::text || ', strict ' || p.proisstrict || ', security definer ' || p.prosecdef
               || ', leakproof ' || p.proleakproof || ', parallel ' || p.proparallel::text,
               'settings ' || COALESCE(pg_catalog.array_to_string(p.proconfig, ','), ''),
               'owner ' || COALESCE((SELECT w.name FROM who w WHERE w.oid = p.proowner), 'no role ' || p.proowner::text),
               'privileges ' || COALESCE(acl.items, 'none'),
               'support ' || p.prosupport::pg_catalog.regproc::text || ', transforms ' || COALESCE(p.protrftypes::text, ''),
               'body sha256 ' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p.prosrc, 'UTF8')), 'hex')
               || COALESCE(', library ' || p.probin, ''))
    FROM pg_catalog.pg_proc p
    JOIN spaces s ON s.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(g.item, ',' ORDER BY g.item) AS items
        FROM (SELECT COALESCE(w.name, 'no role ' || a.grantee::text) || '=' || a.privilege_type
                     || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item
              FROM pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
              LEFT JOIN who w ON w.oid = a.grantee
              WHERE a.grantee <> p.proowner) g
    ) acl
),
-- Anything else in the schemas, which an install has none of: a type, an
-- operator or a conversion found by a function searching schema audit.
other_rows AS (
    SELECT 'type ' || t.oid::pg_catalog.regtype::text, 'kind ' || t.typtype::text
    FROM pg_catalog.pg_type t JOIN spaces s ON s.oid = t.typnamespace
    WHERE t.typrelid = 0
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid AND e.typrelid <> 0)
    UNION ALL
    SELECT 'operator ' || o.oid::pg_catalog.regoperator::text, 'function ' || o.oprcode::text
    FROM pg_catalog.pg_operator o JOIN spaces s ON s.oid = o.oprnamespace
    UNION ALL
    SELECT 'operator class ' || s.nspname || '.' || x.opcname, 'present'
    FROM pg_catalog.pg_opclass x JOIN spaces s ON s.oid = x.opcnamespace
    UNION ALL
    SELECT 'operator family ' || s.nspname || '.' || x.opfname, 'present'
    FROM pg_catalog.pg_opfamily x JOIN spaces s ON s.oid = x.opfnamespace
    UNION ALL
    SELECT 'collation ' || s.nspname || '.' || x.collname, 'present'
    FROM pg_catalog.pg_collation x JOIN spaces s ON s.oid = x.collnamespace
    UNION ALL
    SELECT 'conversion ' || s.nspname || '.' || x.conname, 'default ' || x.condefault
    FROM pg_catalog.pg_conversion x JOIN spaces s ON s.oid = x.connamespace
    UNION ALL
    SELECT 'text search configuration ' || s.nspname || '.' || x.cfgname, 'present'
    FROM pg_catalog.pg_ts_config x JOIN spaces s ON s.oid = x.cfgnamespace
    UNION ALL
    SELECT 'text search dictionary ' || s.nspname || '.' || x.dictname, 'present'
    FROM pg_catalog.pg_ts_dict x JOIN spaces s ON s.oid = x.dictnamespace
    UNION ALL
    SELECT 'statistics ' || s.nspname || '.' || x.stxname, 'present'
    FROM pg_catalog.pg_statistic_ext x JOIN spaces s ON s.oid = x.stxnamespace
    UNION ALL
    SELECT 'extension ' || x.extname, 'in schema ' || s.nspname
    FROM pg_catalog.pg_extension x JOIN spaces s ON s.oid = x.extnamespace
    UNION ALL
    -- A cast between built-in types that PostgreSQL does not define: `details::text`
    -- (sealing hashes it) would call it instead of the type's own output.
    SELECT 'cast ' || pg_catalog.format_type(k.castsource, NULL) || ' as ' || pg_catalog.format_type(k.casttarget, NULL),
           'function ' || k.castfunc::pg_catalog.regprocedure::text || ', context ' || k.castcontext::text
           || ', method ' || k.castmethod::text
    FROM pg_catalog.pg_cast k
    WHERE k.oid >= 16384 AND k.castsource < 16384 AND k.casttarget < 16384
),
event_trigger_rows AS (
    SELECT 'event trigger ' || e.evtname,
           'on ' || e.evtevent || ', enabled ' || e.evtenabled::text
           || ', tags ' || COALESCE(e.evttags::text, 'all')
           || ', function ' || e.evtfoid::pg_catalog.regprocedure::text
           || ', owner ' || COALESCE((SELECT w.name FROM who w WHERE w.oid = e.evtowner), 'no role ' || e.evtowner::text)
    FROM pg_catalog.pg_event_trigger e
    WHERE e.evtname LIKE 'audit%'
       OR e.evtfoid IN (SELECT p.oid FROM pg_catalog.pg_proc p JOIN spaces s ON s.oid = p.pronamespace)
),
-- Holding a role means being able to act as it: on PostgreSQL 16 and later
-- a membership without SET and INHERIT (the one a role's creator gets) does
-- not; on 15, where pg_auth_members has neither column, every one does.
role_rows AS (
    SELECT 'role ' || r.rolname,
           'superuser ' || r.rolsuper || ', inherit ' || r.rolinherit || ', create role ' || r.rolcreaterole
           || ', create database ' || r.rolcreatedb || ', login ' || r.rolcanlogin
           || ', replication ' || r.rolreplication || ', bypass row level security ' || r.rolbypassrls
           || E'\nheld by ' || COALESCE((
               SELECT pg_catalog.string_agg(w.name, ',' ORDER BY w.name)
               FROM pg_catalog.pg_auth_members m JOIN who w ON w.oid = m.member
               WHERE m.roleid = r.oid
                 AND (COALESCE((pg_catalog.to_jsonb(m) ->> 'set_option')::boolean, true)
                      OR COALESCE((pg_catalog.to_jsonb(m) ->> 'inherit_option')::boolean, true))), 'no one')
    FROM pg_catalog.pg_roles r
    WHERE r.rolname IN ('audit_owner', 'audit_definer')
)
SELECT * FROM schema_rows
UNION ALL SELECT * FROM relation_rows
UNION ALL SELECT * FROM function_rows
UNION ALL SELECT * FROM other_rows
UNION ALL SELECT * FROM event_trigger_rows
UNION ALL SELECT * FROM role_rows
$surface$;

CREATE OR REPLACE FUNCTION audit.schema_version()
RETURNS integer
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$SELECT 13$$;

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH expected (part, object, fingerprint) AS (VALUES
-- BEGIN EXPECTED SURFACE (scripts/surface)
    ('core', 'composite type audit.page_entry', 'c738e78fed2ad89cc57ed6e7e2c581ea49a58fb7c4099050e521dfdf74468a7b'),
    ('guard', 'event trigger audit_refuse_ddl', '5d761190b3f33ffe87e39bbb13e229eda4f346c41c0163b6b09f8c0dc7a0005f'),
    ('guard', 'event trigger audit_refuse_drop', '9c58afa4180614a0a140259988a7381deabef9661c669cad870aa69b03e7f6fb'),
    ('core', 'function audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'ec545e8a425831082eac93089cc650de74e34a9cc09b3f6c55a14dfe33dd1c63'),
    ('core', 'function audit._block_hash_v2(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone,bigint)', 'c21e336bc542ce6e205ef2d08297a5808e2ee44f94463fd3709a166fd88eed6d'),
    ('core', 'function audit._context_extra()', '8342650c1a29c507204861e0a7b30f3cd23fcad9f7471850781e1f9aadba744d'),
    ('core', 'function audit._context_user(text)', 'e64555c99ac23c17af2d40b3cab591f5a36097f91eb605e8068daf3e1fb83f88'),
    ('core', 'function audit._context_uuid(text)', '99aa019592dc50caea2aa615b36400de5a3849d4381a28f33b63a6e8c3bb2ec7'),
    ('core', 'function audit._cursor_position(text,text)', '76c7f44685bf4eb8e68410ecad09f9864c567379edce2720fb565c722abc83b0'),
    ('core', 'function audit._entry_problem(uuid,text,text,uuid,jsonb)', '487a586dd6d3b5dd0449643c7988820de46f84f7b27128a02a69ea46cc20b911'),
    ('core', 'function audit._merkle_root(bytea[])', '3b1c3123d07a250fb58bc36c4e76735adcad08dc778e21ddf902ef534ff30f68'),
    ('core', 'function audit._micros(timestamp with time zone)', '4afc3b1a9921af2f972565e289b8d21043cad0ebf079d1a4ff54dfb6bba99994'),
    ('core', 'function audit._missing_company(text,text)', '5311a8fec37ae1140129102f8d880394b3b63609228a91aa670e30ec76202e6f'),
    ('core', 'function audit._opt_uuid_bytes(uuid)', '5358bc5544a3f2a6cd8cd597807774972e1eba87fd37e7400a90c82edaf23394'),
    ('core', 'function audit._page_problem(integer,timestamp with time zone,uuid)', 'bb1a86924a188906f3238c96bb3a52a0d7525f15985ffdfa9dd65fad9848d0b8'),
    ('core', 'function audit._pinned_companies()', '078ade200354cca6f8173e9b44a42e0c9ed3d3e5614189bfc85b268472f2891f'),
    ('core', 'function audit._refuse_change()', 'dee8e95aa94cb26729460279701fed3357b7039109d16e2cc54f45f3d752b27d'),
    ('core', 'function audit._refuse_tracking(text)', '3d0a89e1ecb7397019e161a38e5d8123e610a40bd3696293ca9f307ba4bc9f6d'),
    ('core', 'function audit._refuse_truncate()', '0f4a62fe29f4c46281fafc49abc9427f326fba7bde57eeaf2e23e692467d8f59'),
    ('core', 'function audit._require_user(text)', '6ba339c4ddd82aceeb74dd2362b648f47b35a960077cdbb5840fdd9f3331f2be'),
    ('core', 'function audit._stamp_entry()', '8b5437390d99e7b6b65ec55cae676c33ab5c0a9360e773dd748c583c49825171'),
    ('core', 'function audit._str_bytes(text)', '2abf11dd0adcbe9f320ffc01c233d91933e5a69bc71829134753c87539ca32bf'),
    ('core', 'function audit._surface()', '73549c20255da7b6ad6b4553f9bf0369f22a48f2724d17619448837788ec4009'),
    ('core', 'function audit._track_changes()', 'fbae13e09c7840bd0b8662c481553ff1314c7f8b619df430104530818207527a'),
    ('core', 'function audit._untrackable(regclass)', '4342dcecad291c2dd6d313c42ab622c17557df236dc9838f8593a38fae386f97'),
    ('core', 'function audit.digest()', '0c91c36f3eb45ac98c33b4a3891cb057a9dc31607bb2e86a8ff7a57732667324'),
    ('core', 'function audit.disable_strict_mode(regrole)', 'fdb2e62229d58b27208e3dcf9221fc464b36414b3795d9b921271ad8e534e3d5'),
    ('core', 'function audit.disable_tracking(regclass)', '4f783f536ad5e297d80661e08d0ec67ec83a9f4c72e8d22a43313c4d1069365b'),
    ('core', 'function audit.enable_strict_mode(regrole)', 'd0170bdff51bae7a9f07e6663d3794863ec3c683f5a841ab1d96bf1f52e8a840'),
    ('core', 'function audit.enable_tracking(regclass,text,text[])', 'bfab9d2d3730a1dcb2853778e7e4327550531385bb1ff30b1e28f3ebc44b26ae'),
    ('core', 'function audit.entry_hash(audit.audit_logs)', 'b89ba2f9cda32e5d496514094bfbc23f8603b75628dbe676fd71584717a5dd45'),
    ('core', 'function audit.history(text,uuid,integer,timestamp with time zone,uuid,text)', '3f764a5ae5ae056d4d297c5d507b883eb5d4e6f6890c60b82045ebc823c491d0'),
    ('core', 'function audit.page_cursor(timestamp with time zone,uuid)', '6405ce2404558ae790c47050e66c6e7f5bff35affc4a9403454cd18d61fd1f47'),
    ('core', 'function audit.pin_tenant(regrole,uuid)', 'c2aaa15acdd754b00d2eb5ee941f711b62acb833d5968b3609695836620bb8f3'),
    ('core', 'function audit.protection_problems()', '472f499d946824f1cde80d290912a26468ab6c48989d43406881e6f69bba7007'),
    ('core', 'function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '994005e9ea2b69fa7fd5141a10d0978254fcce4731e3bcb201d1ece8ce53eb7f'),
    ('core', 'function audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', 'a1b2e22b88acc9a1e362ed30aa5735d8318a3daf166eb927f0496487ff65d261'),
    ('core', 'function audit.schema_version()', 'ac7a168cd0746e7fa72377a0c0c23940567695dc8b2fe67d60dbb9224c082157'),
    ('core', 'function audit.seal()', '8881643341751dab3028a8fb2240d892d969a9c9388c8b3c0f452f68757108cd'),
    ('core', 'function audit.search(uuid,uuid,uuid,text,text,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone,uuid,text)', 'be495ae728c56ab430e72c8e282a2cd8f13d62245a338fb5bca2e6b84f818d00'),
    ('core', 'function audit.set_context(uuid,uuid,uuid,jsonb)', 'caa9b40e8c7111ba5dd1baab94353c6ce3884a0c5894f5b733a0ed78aa0a0cbf'),
    ('core', 'function audit.unpin_tenant(regrole,uuid)', '194de916e7416c1a2fe35f6d6607362b8281aa32becfc93bd9d5ab24fc310198'),
    ('core', 'function audit.verify(uuid)', 'b0a4837d8383068b751646f240ff8a2047443ad3a62a56d37cb6b8d969f649ba'),
    ('guard', 'function audit_guard.refuse_ddl()', 'c4f91ec05b2a65f653476484ffd2e42042f71abc0801378dbdd8fcdc9925a74a'),
    ('core', 'index audit.audit_idx', 'b5573ba64640401db24a9a23c5a1321ee93941af560e2c565a972a2ebf334d52'),
    ('core', 'index audit.audit_logs_company_idx', 'd572376a945336a2545bb581d2dab8dc96d47758daf061163d003ba3ba3f45ed'),
    ('core', 'index audit.audit_logs_entity_idx', '907865ad18fec369c704004a51f9e6ef116f4e389645a0b5e7317ca14cad86e1'),
    ('core', 'index audit.audit_logs_origin_txid_idx', '5648eddf9780ba6a65fc03ba4187b38ef886da982efe3d6ce9de90440f67239a'),
    ('core', 'index audit.audit_logs_pkey', '1d0a7074f02a166af25ccadd097d4f4b90ab439a68309b434ea57e5e313ca2f3'),
    ('core', 'index audit.audit_logs_txid_brin', '567f3b9d7716a933014f79c0ca48783d71441678c6619662cf8e328f18e1d09e'),
    ('core', 'index audit.audit_logs_user_idx', '5b5bf2a90b70470d48e1d5d9ce492d560418ceae2828899e58279099a58a037a'),
    ('core', 'index audit.blocks_origin_xid_to_idx', 'a3270df52b40a8f8e5a3c60586c499f228a77e897105af3637202dd7f7b796ad'),
    ('core', 'index audit.blocks_pkey', '221ee7c3d373f7ef831ac452aed5f538e42480c3d54ef6d72e2cdbbb9704e455'),
    ('core', 'index audit.blocks_xid_to_idx', '2fdafb211dbc5570f0fbff80654bbeb371e3c96d8a9064760f7c776caff9c058'),
    ('core', 'index audit.seal_lock_one_row', 'bb25628a4a5c03ce3c7febd2878405f98605e5d6d103a3aae121ce147cef8cb8'),
    ('core', 'index audit.strict_mode_login_role_key', 'd86cf9a96ded7c10dd230c02ac5ef6bb7ca474dac0ad481392b65c5faebe57eb'),
    ('core', 'index audit.tenant_logins_pkey', 'd9928346cdd055962be10fae04025c006d951f5ec2ee9b9726a2f0db2e96625e'),
    ('core', 'role audit_definer', '64b7c51c80289504aa6f665ee5e7ab72e1ef22f0eb29d9499e7133654107b9c8'),
    ('core', 'role audit_owner', '64b7c51c80289504aa6f665ee5e7ab72e1ef22f0eb29d9499e7133654107b9c8'),
    ('core', 'schema audit', 'e0571f5676b662e7d833f8a4c9da84fda22270e7fad58e39941ca3f7e93e797e'),
    ('guard', 'schema audit_guard', 'a35249eabc85cff693c43f67cf08016534483db34cce313c3603e340327649ec'),
    ('core', 'table audit.audit_logs', '25c8818d44f57c0e2bdc63461d0381895a6cadd62dc4d55ace12900d457760e1'),
    ('core', 'table audit.blocks', 'a4f6be786e4f62c61a94caa7cbba371bf1dbabce8070885761db0e3ea5604749'),
    ('core', 'table audit.seal_lock', 'e2088cfc78c4fa9cee2a0a14cf4afd93e90009b4a24e3b3526df9c3da1b7739c'),
    ('core', 'table audit.strict_mode', '4f7d685a0aa37ec8497d898222a330c0265726d2edf9f333b5fe20bca6c50f24'),
    ('core', 'table audit.tenant_logins', 'a161660ee2d334f8068b670c3a21d70be356fec24bc1ce653be19aff3c29f68d'),
    ('core', 'view audit.audit_new', 'e3f8a1c95c6534d74bebb1a20249f1934b6e619b16f9adf9fb7581d6ba2d8059'),
    ('core', 'view audit.audit_old', '55a6c3a2cfd48faef211a1a7e8fe6718bf0706e0f4ff6f47de08c656a396c2be'),
    ('core', 'view audit.tracked_tables', '1f45d30efb2fa0cde73cbaba65ea649d3144507b050d8b92d06aa3d06341d930'),
    ('core', 'view audit.tracked_tables', 'c7715defd4fbc049062cbe338ba332137115768aad394cc8ace3b707f31c935d')
-- END EXPECTED SURFACE
),
actual AS (
    SELECT s.object,
           pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(s.description, 'UTF8')), 'hex') AS fingerprint
    FROM audit._surface() s
    WHERE s.object OPERATOR(pg_catalog.<>) 'function audit._protection_problems()'
),
guard AS (
    SELECT EXISTS (SELECT FROM actual a JOIN expected e USING (object) WHERE e.part OPERATOR(pg_catalog.=) 'guard')
           AS installed
)
SELECT pg_catalog.format('%s is missing', e.object)
FROM (SELECT DISTINCT x.part, x.object FROM expected x) e
WHERE (e.part OPERATOR(pg_catalog.=) 'core' OR (SELECT g.installed FROM guard g))
  AND NOT EXISTS (SELECT FROM actual a WHERE a.object OPERATOR(pg_catalog.=) e.object)
UNION ALL
SELECT pg_catalog.format('%s was added', a.object)
FROM actual a
WHERE NOT EXISTS (SELECT FROM expected e WHERE e.object OPERATOR(pg_catalog.=) a.object)
UNION ALL
SELECT pg_catalog.format('%s was changed (audit-py verify names what differs)', a.object)
FROM actual a
WHERE EXISTS (SELECT FROM expected e WHERE e.object OPERATOR(pg_catalog.=) a.object)
  AND NOT EXISTS (SELECT FROM expected e
                  WHERE e.object OPERATOR(pg_catalog.=) a.object
                    AND e.fingerprint OPERATOR(pg_catalog.=) a.fingerprint)
$$;

COMMENT ON FUNCTION audit._protection_problems() IS
    'What differs in the protection surface of the log (audit._surface()) from a fresh install: objects missing, added or changed; no row when all is in place.';

RESET ROLE;
DO $give$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY COALESCE(pg_catalog.string_to_array(NULLIF(pg_catalog.current_setting('audit.roles_taken', true), ''), ','), '{}') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
    END LOOP;
END $give$;
