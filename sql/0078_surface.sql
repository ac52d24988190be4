-- audit._surface(): the protection surface of the log, one row per object
-- whose change could alter what is recorded, what is refused, or what a
-- verifier reads, with a description of everything about it that matters.
--
-- Covered: schemas audit and audit_guard; every relation of them (kind,
-- persistence, owner, privileges, row-level security flags, relhastriggers,
-- columns with their types, defaults and privileges, constraints, indexes,
-- every trigger with its enabled state, policies, rules, view definitions,
-- inheritance parents and children, partitions); every function (arguments
-- and defaults, result, language, volatility, strictness, security,
-- leakproofness, parallel safety, settings, owner, privileges, a hash of the
-- body); any other object of those schemas (types, operators, collations,
-- conversions ...); the event triggers of the guard; and the two roles that
-- own the log (their attributes and who holds them).
--
-- Both verifiers run this same text and compare it with what a fresh install
-- has (audit_py/surface.json; audit._protection_problems() holds the hashes):
-- audit.verify() through this function, `audit-py verify` from the copy of
-- this file it ships with, never through the database's function. Both pin
-- search_path = pg_catalog, pg_temp first, on which the text form of names
-- (regprocedure, format_type, pg_get_*def) depends. A superuser is rendered
-- as "a superuser": the guard belongs to whichever one installed it. The
-- owner's own privileges are left out (PostgreSQL 17 added MAINTAIN to them).
-- Storage and planner tuning (reloptions of tables and indexes, statistics
-- targets, costs) and comments are left out: they change nothing above.

CREATE FUNCTION audit._surface()
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
           -- What it holds in turn: a predefined role such as pg_write_all_data
           -- would give audit_definer the stamp's columns.
           || E'\nmember of ' || COALESCE((
               SELECT pg_catalog.string_agg(g.rolname, ',' ORDER BY g.rolname)
               FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
               WHERE m.member = r.oid), 'no role')
           -- What it owns elsewhere in this database: a view of the log or a
           -- SECURITY DEFINER function of its own, outside the two schemas,
           -- would act with its rights for whoever it lets in.
           || E'\nowns outside schema audit ' || COALESCE((
               SELECT pg_catalog.string_agg(o.type || ' ' || o.identity, ', ' ORDER BY o.type, o.identity)
               FROM pg_catalog.pg_shdepend d
               CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
               WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid
                 AND d.deptype = 'o'
                 AND d.dbid IN (0, (SELECT b.oid FROM pg_catalog.pg_database b
                                    WHERE b.datname = pg_catalog.current_database()))
                 AND o.schema IS DISTINCT FROM 'audit' AND o.schema IS DISTINCT FROM 'audit_guard'
                 AND NOT (o.type = 'schema' AND o.identity IN ('audit', 'audit_guard'))), 'nothing')
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

COMMENT ON FUNCTION audit._surface() IS
    'The protection surface of the log: one row per object that protects it, with a description of all that matters about it. audit._protection_problems() compares it with a fresh install.';

-- The schema's version: the number of the newest migration that changed the
-- surface. `audit-py verify` reads it from the catalog (it never calls a
-- function of the log) to know whether it holds this version's surface.
CREATE FUNCTION audit.schema_version()
RETURNS integer
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$SELECT 15$$;

COMMENT ON FUNCTION audit.schema_version() IS
    'The version of the log''s schema: the number of the newest migration that changed its protection surface.';
