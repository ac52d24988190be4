-- Tracking plans that hold at any size. The INSERT of an UPDATE's entries
-- pairs the old and new rows by position with a FULL JOIN rather than a
-- JOIN: its plan is kept for the session, made with the sizes of the
-- statement that first ran it, and a single-row statement's plan was a
-- nested loop, under which a later bulk UPDATE in the same session took time
-- in the square of its rows (4,000 rows: 50 s rather than 0.2). A full join
-- cannot be a nested loop. And audit.tracked_tables shows triggers_in_place
-- false for a tracked table that became a partition or an inheritance
-- parent or child, through which writes go unrecorded, as it does for a
-- dropped trigger. No signature changes; no entry.
-- depends: 0014.cheaper-entries

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as its roles for this
-- transaction only; _track_changes() belongs to audit_definer.
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
SET LOCAL ROLE audit_owner;

-- ---- sql/0055_tracking.sql, as audit_definer ----

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

SET LOCAL ROLE audit_owner;
REVOKE CREATE ON SCHEMA audit FROM audit_definer;

-- ---- sql/0055_tracking.sql: audit.tracked_tables ----

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

COMMENT ON COLUMN audit.tracked_tables.triggers_in_place IS
    'False when one of the four tracking triggers was dropped, disabled, enabled for replica sessions only, or replaced by another of its name (enable_tracking() again restores them), or when the table became a partition or an inheritance parent or child, through which writes are not recorded.';

-- ---- sql/0078_surface.sql and sql/0080_verify.sql: what a fresh install of this version has ----

CREATE OR REPLACE FUNCTION audit.schema_version()
RETURNS integer
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$SELECT 15$$;

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
    ('core', 'function audit._new_entry_id()', 'c54ab7886f548c1f2b0e03ca6af5058521c1b8faf16ab92a04133ac658b320ff'),
    ('core', 'function audit._opt_uuid_bytes(uuid)', '5358bc5544a3f2a6cd8cd597807774972e1eba87fd37e7400a90c82edaf23394'),
    ('core', 'function audit._page_problem(integer,timestamp with time zone,uuid)', 'bb1a86924a188906f3238c96bb3a52a0d7525f15985ffdfa9dd65fad9848d0b8'),
    ('core', 'function audit._pinned_companies()', '078ade200354cca6f8173e9b44a42e0c9ed3d3e5614189bfc85b268472f2891f'),
    ('core', 'function audit._refuse_change()', 'dee8e95aa94cb26729460279701fed3357b7039109d16e2cc54f45f3d752b27d'),
    ('core', 'function audit._refuse_tracking(text)', '3d0a89e1ecb7397019e161a38e5d8123e610a40bd3696293ca9f307ba4bc9f6d'),
    ('core', 'function audit._refuse_truncate()', '0f4a62fe29f4c46281fafc49abc9427f326fba7bde57eeaf2e23e692467d8f59'),
    ('core', 'function audit._require_user(text)', '6ba339c4ddd82aceeb74dd2362b648f47b35a960077cdbb5840fdd9f3331f2be'),
    ('core', 'function audit._stamp_entry()', 'a0281c9313d536252e7d726655be5ec797d84fb7899e82282b9424954ccf2818'),
    ('core', 'function audit._str_bytes(text)', '2abf11dd0adcbe9f320ffc01c233d91933e5a69bc71829134753c87539ca32bf'),
    ('core', 'function audit._surface()', '22bf36d92c7fd22918395afb775b96aca50744e8072374ae9bae0995bcec1998'),
    ('core', 'function audit._track_changes()', '408e5fd5a36314585a12543fa6b3d9410b10f7a6d4a1cc45cd1e45fdde2138e2'),
    ('core', 'function audit._untrackable(regclass)', '831cc03921684b6ec8f32095d158726d8cb3317b339f25f99d271a91c4233fbd'),
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
    ('core', 'function audit.schema_version()', '7e7f8a5fcf308b29321d8c33d244be3f2fe821fff7898ff404d5dbc76e9af198'),
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
    ('core', 'role audit_definer', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('core', 'role audit_owner', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('core', 'schema audit', 'e0571f5676b662e7d833f8a4c9da84fda22270e7fad58e39941ca3f7e93e797e'),
    ('guard', 'schema audit_guard', 'a35249eabc85cff693c43f67cf08016534483db34cce313c3603e340327649ec'),
    ('core', 'table audit.audit_logs', 'f9a5be72ce494ca560b642e68fb7a4f675a18010fc5504558102a926a531eb60'),
    ('core', 'table audit.blocks', 'a4f6be786e4f62c61a94caa7cbba371bf1dbabce8070885761db0e3ea5604749'),
    ('core', 'table audit.seal_lock', 'e2088cfc78c4fa9cee2a0a14cf4afd93e90009b4a24e3b3526df9c3da1b7739c'),
    ('core', 'table audit.strict_mode', '4f7d685a0aa37ec8497d898222a330c0265726d2edf9f333b5fe20bca6c50f24'),
    ('core', 'table audit.tenant_logins', 'a161660ee2d334f8068b670c3a21d70be356fec24bc1ce653be19aff3c29f68d'),
    ('core', 'view audit.audit_new', 'e3f8a1c95c6534d74bebb1a20249f1934b6e619b16f9adf9fb7581d6ba2d8059'),
    ('core', 'view audit.audit_old', '55a6c3a2cfd48faef211a1a7e8fe6718bf0706e0f4ff6f47de08c656a396c2be'),
    ('core', 'view audit.tracked_tables', '6055b0bcf5c152f70ff1853629e5de5df5894e547a43e9efeae09834a8a36bc1'),
    ('core', 'view audit.tracked_tables', '92404f380416fab3f27079d044377a088d272cfab9538ad5ab6c3ed9914c8020')
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

RESET ROLE;
DO $give$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY COALESCE(pg_catalog.string_to_array(NULLIF(pg_catalog.current_setting('audit.roles_taken', true), ''), ','), '{}') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
    END LOOP;
END $give$;
