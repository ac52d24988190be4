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

-- What keeps a table from being tracked whole, or from being serialized
-- without running someone else's code: NULL when nothing does, else why.
--
-- Statement triggers fire for the table a statement names, not for its
-- partitions or inheritance children, nor for a parent writing through to
-- it: tracking any of them would leave writes unrecorded, so it refuses
-- them all, at enable time and at every statement (a child may be added
-- later).
--
-- to_jsonb() of a row calls the cast to json of any column type not built
-- into PostgreSQL, if one exists: in the tracking trigger, that would run
-- the cast's function with the rights of the function role. A cast whose
-- function is C or internal code was installed by a superuser and is
-- trusted; any other, of any type, refuses every table with a column of a
-- type of its own (an enum, a domain, a range, a composite ...), which
-- over-approximates the types to_jsonb() could reach through a cast.
-- No SET clause, so that it costs no configuration change per statement:
-- every name is qualified, and its callers pin the search_path.
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
    ELSE (SELECT pg_catalog.format(
              'column %I is of type %s, not a built-in one, and this database has a cast of its own to %s (from %s, by %s): serializing the row would run that function with the rights of the log',
              a.attname, a.atttypid::pg_catalog.regtype, k.casttarget::pg_catalog.regtype,
              k.castsource::pg_catalog.regtype, k.castfunc::pg_catalog.regprocedure)
          FROM pg_catalog.pg_attribute a,
               pg_catalog.pg_cast k
               JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) k.castfunc
               JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) f.prolang
          WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
            -- 16384 is FirstNormalObjectId: every type below it is built in.
            AND a.atttypid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
            AND k.casttarget IN ('pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype)
            AND l.lanname NOT IN ('c', 'internal')
          ORDER BY a.attnum
          LIMIT 1)
END
FROM pg_catalog.pg_class c
WHERE c.oid OPERATOR(pg_catalog.=) table_name
$$;

COMMENT ON FUNCTION audit._untrackable(regclass) IS
    'Why a table cannot be tracked (partitioned, a partition, an inheritance parent or child, or a column type a user-defined cast to json could serialize); NULL when it can.';

-- SECURITY DEFINER: it writes the log as audit_definer, whoever changed the
-- table. It serializes the rows itself, with to_jsonb(), only once
-- audit._untrackable() has found no cast of someone else's that this could
-- run; the rows' other values are data, read by built-in functions.
-- jit = off: the planner sizes the INSERT by the transition table, and for a
-- bulk statement JIT compilation cost more than it saved in bench/tracking.py.
-- Three statements per tracked statement, whatever its size: two catalog
-- lookups and one INSERT, with the context read in the INSERT's own plan.
CREATE FUNCTION audit._track_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
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
    problem    pg_catalog.text := audit._untrackable(TG_RELID);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%: tracking cannot record this table: %', operation, problem
            USING ERRCODE = 'AU004',
                  HINT = 'Stop tracking it with audit.disable_tracking(), or remove what the message names.';
    END IF;
    -- Columns are known by number as well as name, so that a renamed column
    -- changes nothing: the key is still found, an excluded column stays
    -- excluded under its new name.
    SELECT pg_catalog.min(c.name) FILTER (WHERE c.is_key),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE c.is_excluded), '{}'),
           COALESCE(pg_catalog.array_agg(c.name) FILTER (WHERE NOT c.is_excluded), '{}')
    INTO key_column, excluded, visible
    FROM (SELECT a.attname::pg_catalog.text AS name,
                 a.attnum = (config ->> 'key_attnum')::pg_catalog.int2
                     AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AS is_key,
                 a.attnum = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_attnums')::pg_catalog.int2))
                     OR a.attname::pg_catalog.text = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(config -> 'exclude_columns')))
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
