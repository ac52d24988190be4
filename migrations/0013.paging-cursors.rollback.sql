-- Undoes 0013.paging-cursors: search() and history() return audit.audit_logs
-- rows again, without cursors; audit.protection_problems() goes.
-- squawk-ignore-file ban-drop-function, ban-drop-type

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as audit_owner for this transaction only.
DO $take$
BEGIN
    IF NOT (CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000
                 THEN pg_catalog.pg_has_role(current_user, 'audit_owner', 'SET')
                 ELSE pg_catalog.pg_has_role(current_user, 'audit_owner', 'MEMBER') END) THEN
        EXECUTE pg_catalog.format('GRANT audit_owner TO %I', current_user);
        PERFORM pg_catalog.set_config('audit.owner_taken', 'on', true);
    END IF;
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

DROP FUNCTION audit.history(text, uuid, integer, timestamptz, uuid, text);
DROP FUNCTION audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid, text);
DROP FUNCTION audit._cursor_position(text, text);
DROP FUNCTION audit.page_cursor(timestamptz, uuid);
DROP TYPE audit.page_entry;
DROP FUNCTION audit.protection_problems();

CREATE FUNCTION audit.history(
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

COMMENT ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid) IS
$$The entries of one entity, oldest first, page_size (default 100, at most 100000) at a time.
For the next page pass the last entry's created_at and id as after_created_at and after_id.$$;

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

COMMENT ON FUNCTION audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid) IS
$$A company's entries, newest first, page_size (default 100, at most 100000) at a time, narrowed
to a franchise, a user, an action, an entity, and a time range [since, until). For the next page
pass the last entry's created_at and id as after_created_at and after_id.$$;

REVOKE ALL ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid), audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid), audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid) TO audit_reader, audit_tenant_reader;

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
              FROM pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault(
                 CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
              LEFT JOIN who w ON w.oid = a.grantee
              WHERE a.grantee <> c.relowner) g
    ) acl
    CROSS JOIN LATERAL (
        SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', 'column', pg_catalog.quote_ident(t.attname),
                   pg_catalog.format_type(t.atttypid, t.atttypmod),
                   CASE WHEN t.attnotnull THEN 'not null' END,
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
AS $$SELECT 12$$;

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH expected (part, object, fingerprint) AS (VALUES
-- BEGIN EXPECTED SURFACE (scripts/surface)
    ('guard', 'event trigger audit_refuse_ddl', '5d761190b3f33ffe87e39bbb13e229eda4f346c41c0163b6b09f8c0dc7a0005f'),
    ('guard', 'event trigger audit_refuse_drop', '9c58afa4180614a0a140259988a7381deabef9661c669cad870aa69b03e7f6fb'),
    ('core', 'function audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'ec545e8a425831082eac93089cc650de74e34a9cc09b3f6c55a14dfe33dd1c63'),
    ('core', 'function audit._block_hash_v2(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone,bigint)', 'c21e336bc542ce6e205ef2d08297a5808e2ee44f94463fd3709a166fd88eed6d'),
    ('core', 'function audit._context_extra()', '8342650c1a29c507204861e0a7b30f3cd23fcad9f7471850781e1f9aadba744d'),
    ('core', 'function audit._context_user(text)', 'e64555c99ac23c17af2d40b3cab591f5a36097f91eb605e8068daf3e1fb83f88'),
    ('core', 'function audit._context_uuid(text)', '99aa019592dc50caea2aa615b36400de5a3849d4381a28f33b63a6e8c3bb2ec7'),
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
    ('core', 'function audit._surface()', '8f52f73c4539bf3190c04ec5917efe47e42b6597cc7df0e2506bfcc759b8a3dc'),
    ('core', 'function audit._track_changes()', 'fbae13e09c7840bd0b8662c481553ff1314c7f8b619df430104530818207527a'),
    ('core', 'function audit._untrackable(regclass)', '4342dcecad291c2dd6d313c42ab622c17557df236dc9838f8593a38fae386f97'),
    ('core', 'function audit.digest()', '0c91c36f3eb45ac98c33b4a3891cb057a9dc31607bb2e86a8ff7a57732667324'),
    ('core', 'function audit.disable_strict_mode(regrole)', 'fdb2e62229d58b27208e3dcf9221fc464b36414b3795d9b921271ad8e534e3d5'),
    ('core', 'function audit.disable_tracking(regclass)', '4f783f536ad5e297d80661e08d0ec67ec83a9f4c72e8d22a43313c4d1069365b'),
    ('core', 'function audit.enable_strict_mode(regrole)', 'd0170bdff51bae7a9f07e6663d3794863ec3c683f5a841ab1d96bf1f52e8a840'),
    ('core', 'function audit.enable_tracking(regclass,text,text[])', 'bfab9d2d3730a1dcb2853778e7e4327550531385bb1ff30b1e28f3ebc44b26ae'),
    ('core', 'function audit.entry_hash(audit.audit_logs)', 'b89ba2f9cda32e5d496514094bfbc23f8603b75628dbe676fd71584717a5dd45'),
    ('core', 'function audit.history(text,uuid,integer,timestamp with time zone,uuid)', 'b62989c158b6084d740716befaac5125a4b02e3874f765380317d1444520e4e8'),
    ('core', 'function audit.pin_tenant(regrole,uuid)', 'c2aaa15acdd754b00d2eb5ee941f711b62acb833d5968b3609695836620bb8f3'),
    ('core', 'function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '994005e9ea2b69fa7fd5141a10d0978254fcce4731e3bcb201d1ece8ce53eb7f'),
    ('core', 'function audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', 'a1b2e22b88acc9a1e362ed30aa5735d8318a3daf166eb927f0496487ff65d261'),
    ('core', 'function audit.schema_version()', '7a95101ee4bc6d6c576e2e64d265cda511bdc4b43a7ced8c4f417d40a322b787'),
    ('core', 'function audit.seal()', '8881643341751dab3028a8fb2240d892d969a9c9388c8b3c0f452f68757108cd'),
    ('core', 'function audit.search(uuid,uuid,uuid,text,text,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone,uuid)', '8b2e6b0c3e13d7ddd09e17b719a707d3f7f22f4ed3baae97aa21f95c3d252ec8'),
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
    ('core', 'view audit.tracked_tables', '958e4c3da3a499ce572044457a16d294c2290fa151c8377e3d490bfca3decd3f'),
    ('core', 'view audit.tracked_tables', 'bb03d97c42bd48d4d8b5a774f378ca9123d957b97aeeda9767293587fda9e9b7')
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
BEGIN
    IF pg_catalog.current_setting('audit.owner_taken', true) = 'on' THEN
        EXECUTE pg_catalog.format('REVOKE audit_owner FROM %I', current_user);
    END IF;
END $give$;
