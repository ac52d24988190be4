-- Tracking on Citus: a business table distributed by company_id and
-- co-located with the log, each change recorded on the worker that holds it.
--
-- The functions of sql/0055_tracking.sql, redefined (a migration that
-- changes them changes them here too), with these differences only:
-- * audit._track_changes() fires on a shard of the tracked table, on its
--   worker, and writes the entries into the co-located shard of
--   audit.audit_logs, named (see its first statement for why); its INSERTs
--   are therefore dynamic, the shard's name formatted in.
-- * audit.enable_tracking() takes a primary key (company_id, id), which a
--   distributed table needs, recording id as entity_id, and creates the
--   triggers with citus.enable_unsafe_triggers on, so that Citus creates
--   them on every shard.

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
SET lc_monetary = 'C'
-- It inserts into the co-located shard of audit.audit_logs itself, which Citus refuses unless told.
SET citus.enable_manual_changes_to_shards = on
-- Citus hides shards from the catalog in a client's session on a worker: a write to the tracked table
-- by a client connected to the worker would find no shard here, and be refused.
SET citus.override_table_visibility = off
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
    target     pg_catalog.text;
    log_shard  pg_catalog.int8;
    misplaced  pg_catalog.bool;
BEGIN
    -- Citus: this fires on a shard of the tracked table, on its worker. The
    -- entries go into the shard of audit.audit_logs that holds the same
    -- range of company_id, on the same worker: a distributed INSERT from here
    -- would lose the transition tables and run as audit_definer, who may not
    -- log in. Only a table distributed by company_id, co-located with the log,
    -- has such a shard: anything else is refused. The shard is known by its
    -- schema as well as its name: a temporary table named as a shard, with a
    -- trigger made by hand, would otherwise write into the log's shard of
    -- that range entries of any company.
    SELECT pg_catalog.format('audit.%I', 'audit_logs_' OPERATOR(pg_catalog.||) l.shardid), l.shardid
    INTO target, log_shard
    FROM pg_catalog.pg_dist_shard s
    JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid = s.logicalrelid
    JOIN pg_catalog.pg_dist_partition lp ON lp.logicalrelid = 'audit.audit_logs'::pg_catalog.regclass
                                        AND lp.colocationid = p.colocationid
    JOIN pg_catalog.pg_dist_shard l ON l.logicalrelid = lp.logicalrelid
                                   AND l.shardminvalue OPERATOR(pg_catalog.=) s.shardminvalue
    WHERE s.shardid = pg_catalog.substring(TG_TABLE_NAME, '_([0-9]+)$')::pg_catalog.int8
      AND TG_TABLE_NAME = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = s.logicalrelid)
                          OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.shardid
      AND TG_TABLE_SCHEMA = (SELECT n.nspname FROM pg_catalog.pg_class c
                             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                             WHERE c.oid = s.logicalrelid)
      AND pg_catalog.column_to_column_name(s.logicalrelid, p.partkey) = 'company_id';
    IF target IS NULL THEN
        RAISE EXCEPTION '%: tracking on Citus records the shards of a table distributed by company_id and co-located with audit.audit_logs', 
                pg_catalog.format('%s on %I.%I', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME)
            USING ERRCODE = 'AU004',
                  HINT = 'SELECT create_distributed_table(table, ''company_id'', colocate_with => ''audit.audit_logs''), then audit.enable_tracking() again.';
    END IF;
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
    -- A row of another shard's range of companies, written into this shard
    -- by hand (citus.enable_manual_changes_to_shards, by a login that may
    -- write the table): its entry would land beside another range's chains,
    -- where its company's seal and verification never look. Refused.
    EXECUTE pg_catalog.format($sql$SELECT EXISTS (SELECT FROM %I t WHERE pg_catalog.get_shard_id_for_distribution_column(
                                   'audit.audit_logs', t.company_id) OPERATOR(pg_catalog.<>) $1)$sql$,
                              CASE TG_OP WHEN 'DELETE' THEN 'audit_old' ELSE 'audit_new' END)
        INTO misplaced USING log_shard;
    IF misplaced THEN
        RAISE EXCEPTION '%: a row''s company_id belongs to another shard of the table', operation
            USING ERRCODE = 'AU004',
                  HINT = 'Write the table itself, not its shards: Citus sends each row to its company''s shard.';
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
            INSERT INTO %s (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
            SELECT COALESCE((c.new_row ->> 'company_id')::pg_catalog.uuid,
                            (SELECT audit._context_uuid('audit.company_id')),
                            audit._missing_company($1, c.key_row ->> $2)),
                   COALESCE((c.new_row ->> 'franchise_id')::pg_catalog.uuid,
                            (SELECT audit._context_uuid('audit.franchise_id'))),
                   (SELECT audit._context_user($1)), $3, $4, (c.key_row ->> $2)::pg_catalog.uuid,
                   c.details, (SELECT audit._context_extra())
            FROM (%s) AS c
            WHERE c.details IS NOT NULL$sql$,
            target,
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
    -- $1 operation, $2 key_column, $3 action, $4 entity, $5 excluded, $6 visible.
    IF TG_OP IN ('INSERT', 'DELETE') THEN
        -- The rows inserted, or the rows deleted: the statement is the same.
        EXECUTE pg_catalog.format($sql$
        INSERT INTO %1$s (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((r.j ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company($1, r.j ->> $2)),
               COALESCE((r.j ->> 'franchise_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user($1)), $3, $4, (r.j ->> $2)::pg_catalog.uuid,
               r.j OPERATOR(pg_catalog.-) $5, (SELECT audit._context_extra())
        FROM (SELECT pg_catalog.to_jsonb(t.*) AS j FROM %2$I t) AS r$sql$,
            target, CASE TG_OP WHEN 'INSERT' THEN 'audit_new' ELSE 'audit_old' END)
        USING operation, key_column, action, entity, excluded;
    ELSE
        -- PostgreSQL fills the old and new transition tables together, row by
        -- row, so the n-th old row and the n-th new row are the same row: this
        -- pairs them even when the statement changed the primary key. Both hold
        -- as many rows, so the FULL JOIN pairs as a JOIN would, and cannot be a
        -- nested loop: planned here at each statement, with the transition
        -- tables' own sizes, it is kept as sql/0055_tracking.sql has it, where
        -- the plan is kept for the session (0015.tracking-plans).
        -- details holds the changed columns only; a row whose visible columns
        -- did not change writes nothing.
        EXECUTE pg_catalog.format($sql$
        INSERT INTO %s (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        SELECT COALESCE((c.new_row ->> 'company_id')::pg_catalog.uuid, (SELECT audit._context_uuid('audit.company_id')),
                        audit._missing_company($1, c.new_row ->> $2)),
               COALESCE((c.new_row ->> 'franchise_id')::pg_catalog.uuid,
                        (SELECT audit._context_uuid('audit.franchise_id'))),
               (SELECT audit._context_user($1)), $3, $4, (c.new_row ->> $2)::pg_catalog.uuid,
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
                FROM pg_catalog.unnest($6) AS k(name)
                WHERE (o.j -> k.name) IS DISTINCT FROM (n.j -> k.name)
            ) AS d
        ) AS c
        WHERE c.changes IS NOT NULL$sql$, target)
        USING operation, key_column, action, entity, excluded, visible;
    END IF;
    RETURN NULL;
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
-- Citus creates the triggers on every shard of the table only when told they are fit to run there.
SET citus.enable_unsafe_triggers = on
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
    -- Citus: a table distributed by company_id has it in its primary key
    -- (unique keys must hold the distribution column): the key recorded as
    -- entity_id is the other column.
    IF pg_catalog.cardinality(key_columns) = 2 AND 'company_id' = ANY (key_columns) THEN
        key_types := ARRAY[key_types[pg_catalog.array_position(key_columns, CASE WHEN key_columns[1] = 'company_id'
                                                                                THEN key_columns[2] ELSE key_columns[1] END)]];
        key_columns := pg_catalog.array_remove(key_columns, 'company_id');
    END IF;
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
