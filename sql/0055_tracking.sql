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

-- What keeps a table from being tracked whole: NULL when nothing does, else
-- why. Statement triggers fire for the table a statement names, not for its
-- partitions or inheritance children, nor for a parent writing through to
-- it: tracking any of them would leave writes unrecorded, so it refuses
-- them all, at enable time and at every statement (a child may be added
-- later). So is a virtual generated column (PostgreSQL 18), which the
-- transition tables hold as null (from 0014.cheaper-entries). No SET clause, so that it costs no configuration change per
-- statement: every name is qualified, and its callers pin the search_path.
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
    -- PostgreSQL 18: a virtual column has no value in a transition table.
    WHEN v.names IS NOT NULL THEN pg_catalog.format(
        '%s has virtual generated columns (%s), which a statement trigger sees as null: their values would be recorded wrong; make them STORED',
        c.oid::pg_catalog.regclass, v.names)
END
FROM pg_catalog.pg_class c
CROSS JOIN LATERAL (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) AS names
                    FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                      AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) 'v') AS v
WHERE c.oid OPERATOR(pg_catalog.=) table_name
$$;

COMMENT ON FUNCTION audit._untrackable(regclass) IS
    'Why a table cannot be tracked (partitioned, a partition, an inheritance parent or child, virtual generated columns); NULL when it can.';

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

-- SECURITY DEFINER: it writes the log as audit_definer, whoever changed the
-- table. search_path names schema audit before pg_temp for the views above;
-- everything else is qualified.
--
-- Rows become JSON without running anyone's code. to_jsonb() calls the cast
-- to json of any column type not built into PostgreSQL, if its owner made
-- one, and that would run as audit_definer; so a table whose columns are all
-- of built-in types is serialized by to_jsonb(t.*), and one with any other
-- column by a statement built for its columns, where a domain over a
-- built-in type is written as it is (to_jsonb() looks through domains) and
-- any other (an enum, a range, a composite, an array of them) as its text,
-- through its type's output function, which no cast can replace.
--
-- The first relies on the catalog describing the table as the statement
-- sees it, which holds at READ COMMITTED: the statement's lock keeps ALTER
-- TABLE out, and each query takes a new snapshot. Under REPEATABLE READ or
-- SERIALIZABLE the transaction's snapshot may predate an ALTER TABLE that
-- changed, renamed, added or dropped a column, so there every table takes
-- the second way, which checks each value's type and each row's columns.
--
-- jit = off: the planner sizes the INSERT by the transition table, and for a
-- bulk statement JIT compilation cost more than it saved in bench/tracking.py.
-- The output settings are pinned too: values are recorded as their text in
-- places (floats, ranges, dates in a range, intervals, bytea, money), and
-- the writer's session must not round a float away, make a time ambiguous,
-- or print an amount of money in another currency's symbol and scale
-- (lc_monetary, pinned by 0014.cheaper-entries). Times are written in UTC.
-- Two statements per tracked statement, whatever its size: one catalog
-- lookup and one INSERT, with the context read in the INSERT's own plan; the
-- second way takes a third, and plans the INSERT anew each time.
CREATE FUNCTION audit._track_changes()
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
SET lc_monetary = 'C'
AS $$
DECLARE
    config     pg_catalog.jsonb := TG_ARGV[0]::pg_catalog.jsonb;
    entity     pg_catalog.text := config ->> 'entity';
    action     pg_catalog.text := CASE TG_OP WHEN 'INSERT' THEN 'CREATE_' WHEN 'UPDATE' THEN 'UPDATE_' ELSE 'DELETE_' END
                       || (config ->> 'action_suffix');
    operation  pg_catalog.text := pg_catalog.format('%s on %I.%I', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    key_column pg_catalog.text;
    excluded   pg_catalog.text[];
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
    -- One catalog query, whose plan PL/pgSQL keeps: one probe each of
    -- pg_class, pg_inherits and pg_trigger, and one index scan of the
    -- table's columns, with the configuration read once rather than once a
    -- column (0014.cheaper-entries: it cost a single-row statement 40 µs).
    -- Columns are known by number as well as name, so that a renamed column
    -- changes nothing: the key is still found, an excluded column stays
    -- excluded under its new name. A type is built in when its oid is below
    -- 16384 (FirstNormalObjectId).
    SELECT c.key_column, c.excluded, c.built_in,
           -- Cheap signs that audit._untrackable() may find a reason; it is asked only then.
           r.relkind <> 'p' AND NOT r.relispartition AND NOT r.relhassubclass AND NOT c.has_virtual
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid),
           g.oid, g.tgoldtable::pg_catalog.text, g.tgnewtable::pg_catalog.text
    INTO key_column, excluded, built_in, whole, trigger_id, old_table, new_table
    FROM pg_catalog.pg_class r
    CROSS JOIN LATERAL (
        SELECT pg_catalog.min(a.attname::pg_catalog.text)
                   FILTER (WHERE a.attnum = x.key_attnum AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype) AS key_column,
               COALESCE(pg_catalog.array_agg(a.attname::pg_catalog.text)
                            FILTER (WHERE a.attnum = ANY (x.attnums) OR a.attname::pg_catalog.text = ANY (x.names)),
                        '{}') AS excluded,
               pg_catalog.bool_and(a.atttypid < 16384::pg_catalog.oid) AS built_in,
               COALESCE(pg_catalog.bool_or(a.attgenerated = 'v'), false) AS has_virtual
        FROM (SELECT (config ->> 'key_attnum')::pg_catalog.int2 AS key_attnum,
                     ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_attnums')::pg_catalog.int2) AS attnums,
                     ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_columns')) AS names) AS x
        CROSS JOIN pg_catalog.pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    ) AS c
    LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.oid AND g.tgname = TG_NAME
    WHERE r.oid = TG_RELID;
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
                    ' FULL JOIN (SELECT pg_catalog.row_number() OVER () AS position, %1$s AS j FROM audit_new t) AS n'
                    ' USING (position)'
                    ' CROSS JOIN LATERAL (SELECT pg_catalog.jsonb_object_agg(k.name, pg_catalog.jsonb_build_object('
                    '''old'', o.j -> k.name, ''new'', n.j -> k.name)) AS changes'
                    ' FROM pg_catalog.jsonb_object_keys(n.j OPERATOR(pg_catalog.-) $5) AS k(name)'
                    ' WHERE (o.j -> k.name) IS DISTINCT FROM (n.j -> k.name)) AS d',
                    row_json)
            END)
        USING operation, key_column, action, entity, excluded;
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
        -- pairs them even when the statement changed the primary key. Both hold
        -- as many rows, so the FULL JOIN pairs as a JOIN would; it is there
        -- because a full join cannot be a nested loop. The plan of this INSERT
        -- is made once per session and table, with the transition tables' sizes
        -- of the statement that first ran it: a single-row statement's plan
        -- was a nested loop, and a later bulk UPDATE in the same session then
        -- took time in the square of its rows (0015.tracking-plans: 4,000 rows,
        -- 50 s rather than 0.2). A hash or merge join is linear at any size.
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
            FULL JOIN (SELECT pg_catalog.row_number() OVER () AS position, pg_catalog.to_jsonb(t.*) AS j
                       FROM audit_new t) AS n USING (position)
            CROSS JOIN LATERAL (
                SELECT pg_catalog.jsonb_object_agg(k.name, pg_catalog.jsonb_build_object('old', o.j -> k.name,
                                                                                         'new', n.j -> k.name)) AS changes
                FROM pg_catalog.jsonb_object_keys(n.j - excluded) AS k(name)
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

COMMENT ON FUNCTION audit._refuse_truncate() IS
    'Trigger function of tracked tables: refuses TRUNCATE with SQLSTATE AU005.';

-- SECURITY INVOKER: the caller creates and drops the triggers, so PostgreSQL
-- checks the caller's own rights on the table.
CREATE FUNCTION audit.disable_tracking(table_name regclass)
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

COMMENT ON FUNCTION audit.disable_tracking(regclass) IS
    'Stops tracking a table: drops its tracking triggers. Entries already written stay. Harmless on an untracked table.';

CREATE FUNCTION audit.enable_tracking(
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
       -- Nor when the table can no longer be tracked whole, as
       -- audit._untrackable() judges (written out: readers may not call it;
       -- from 0015.tracking-plans). A partition or an inheritance child: writes
       -- made through its parent fire none of its triggers and go unrecorded.
       -- A parent of children, or a table with virtual columns: its own
       -- writes are refused.
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                       WHERE c.oid = tracker.tgrelid AND (c.relkind = 'p' OR c.relispartition))
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE tracker.tgrelid IN (i.inhrelid, i.inhparent))
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = tracker.tgrelid AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attgenerated = 'v')
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
    'False when one of the four tracking triggers was dropped, disabled, enabled for replica sessions only, or replaced by another of its name (enable_tracking() again restores them), or when the table became a partition or an inheritance parent or child, through which writes are not recorded.';
