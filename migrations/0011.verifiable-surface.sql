-- The verifiers check the whole protection surface of the log, not a list of
-- expected parts: audit._surface() describes every object of schema audit
-- (and of the guard), audit._protection_problems() compares it with a fresh
-- install's, audit.verify() counts every row once and refuses values no
-- entry can hold. audit.schema_version() says which surface this is. The
-- configuration tables get row-level security, which pg_write_all_data does
-- not bypass.
-- depends: 0010.validate-printable

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as its roles for this
-- transaction only; audit.verify() belongs to audit_definer.
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

-- ---- sql/0078_surface.sql ----

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
AS $$SELECT 11$$;

COMMENT ON FUNCTION audit.schema_version() IS
    'The version of the log''s schema: the number of the newest migration that changed its protection surface.';

-- ---- sql/0080_verify.sql ----

-- The SHA-256 of each object's description in a fresh install, as
-- audit_py/surface.json holds them in full (scripts/surface writes both).
-- Objects of the guard are expected whole, or not at all where no superuser
-- installed it. This function cannot hold its own hash: `audit-py verify`
-- checks it.
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
    ('core', 'function audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'a250fd8eceebe433524f2445b4174725d742c23a1c439ea2001ccae5fdf55837'),
    ('core', 'function audit._context_extra()', '8342650c1a29c507204861e0a7b30f3cd23fcad9f7471850781e1f9aadba744d'),
    ('core', 'function audit._context_user(text)', 'e64555c99ac23c17af2d40b3cab591f5a36097f91eb605e8068daf3e1fb83f88'),
    ('core', 'function audit._context_uuid(text)', '99aa019592dc50caea2aa615b36400de5a3849d4381a28f33b63a6e8c3bb2ec7'),
    ('core', 'function audit._entry_problem(uuid,text,text,uuid,jsonb)', '487a586dd6d3b5dd0449643c7988820de46f84f7b27128a02a69ea46cc20b911'),
    ('core', 'function audit._merkle_root(bytea[])', '84d6014f5c45e6ea0edc6bdb1d9f9bc9453df0e42023b806586621c0b583faed'),
    ('core', 'function audit._micros(timestamp with time zone)', '4afc3b1a9921af2f972565e289b8d21043cad0ebf079d1a4ff54dfb6bba99994'),
    ('core', 'function audit._missing_company(text,text)', '5311a8fec37ae1140129102f8d880394b3b63609228a91aa670e30ec76202e6f'),
    ('core', 'function audit._opt_uuid_bytes(uuid)', '5358bc5544a3f2a6cd8cd597807774972e1eba87fd37e7400a90c82edaf23394'),
    ('core', 'function audit._page_problem(integer,timestamp with time zone,uuid)', 'bb1a86924a188906f3238c96bb3a52a0d7525f15985ffdfa9dd65fad9848d0b8'),
    ('core', 'function audit._pinned_companies()', '078ade200354cca6f8173e9b44a42e0c9ed3d3e5614189bfc85b268472f2891f'),
    ('core', 'function audit._refuse_change()', 'dee8e95aa94cb26729460279701fed3357b7039109d16e2cc54f45f3d752b27d'),
    ('core', 'function audit._refuse_tracking(text)', '3d0a89e1ecb7397019e161a38e5d8123e610a40bd3696293ca9f307ba4bc9f6d'),
    ('core', 'function audit._refuse_truncate()', '0f4a62fe29f4c46281fafc49abc9427f326fba7bde57eeaf2e23e692467d8f59'),
    ('core', 'function audit._require_user(text)', '6ba339c4ddd82aceeb74dd2362b648f47b35a960077cdbb5840fdd9f3331f2be'),
    ('core', 'function audit._stamp_entry()', '53acf64292b10f152d67941e627fc41597b88a11394dfdcb9a54e51ac94371a6'),
    ('core', 'function audit._str_bytes(text)', '2abf11dd0adcbe9f320ffc01c233d91933e5a69bc71829134753c87539ca32bf'),
    ('core', 'function audit._surface()', 'cef4b4c218cb6c2aecdc88cde52740d68c79adddc346fcc1ed9baaba2ee647de'),
    ('core', 'function audit._track_changes()', 'fbae13e09c7840bd0b8662c481553ff1314c7f8b619df430104530818207527a'),
    ('core', 'function audit._untrackable(regclass)', '4342dcecad291c2dd6d313c42ab622c17557df236dc9838f8593a38fae386f97'),
    ('core', 'function audit.digest()', '0c91c36f3eb45ac98c33b4a3891cb057a9dc31607bb2e86a8ff7a57732667324'),
    ('core', 'function audit.disable_strict_mode(regrole)', 'fdb2e62229d58b27208e3dcf9221fc464b36414b3795d9b921271ad8e534e3d5'),
    ('core', 'function audit.disable_tracking(regclass)', '4f783f536ad5e297d80661e08d0ec67ec83a9f4c72e8d22a43313c4d1069365b'),
    ('core', 'function audit.enable_strict_mode(regrole)', 'd0170bdff51bae7a9f07e6663d3794863ec3c683f5a841ab1d96bf1f52e8a840'),
    ('core', 'function audit.enable_tracking(regclass,text,text[])', 'bfab9d2d3730a1dcb2853778e7e4327550531385bb1ff30b1e28f3ebc44b26ae'),
    ('core', 'function audit.entry_hash(audit.audit_logs)', '7eabea8e38b294a6c347caf5d2f2e6c44017e2529d1a347f879238a83c772ce2'),
    ('core', 'function audit.history(text,uuid,integer,timestamp with time zone,uuid)', 'b62989c158b6084d740716befaac5125a4b02e3874f765380317d1444520e4e8'),
    ('core', 'function audit.pin_tenant(regrole,uuid)', '3393cf450dceceb736dd5209c4985b3e09bbb23336b685144b9caabff19c8cb1'),
    ('core', 'function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '994005e9ea2b69fa7fd5141a10d0978254fcce4731e3bcb201d1ece8ce53eb7f'),
    ('core', 'function audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', 'a1b2e22b88acc9a1e362ed30aa5735d8318a3daf166eb927f0496487ff65d261'),
    ('core', 'function audit.schema_version()', 'af659a204455e95e9dcddf16320abf09f20a2fb4a6c829860031553476f55763'),
    ('core', 'function audit.seal()', '16615b30bd5042e82e308c57107d33bb017463b0abc845a78d0612cfa8ca7a6e'),
    ('core', 'function audit.search(uuid,uuid,uuid,text,text,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone,uuid)', '8b2e6b0c3e13d7ddd09e17b719a707d3f7f22f4ed3baae97aa21f95c3d252ec8'),
    ('core', 'function audit.set_context(uuid,uuid,uuid,jsonb)', 'caa9b40e8c7111ba5dd1baab94353c6ce3884a0c5894f5b733a0ed78aa0a0cbf'),
    ('core', 'function audit.unpin_tenant(regrole,uuid)', '194de916e7416c1a2fe35f6d6607362b8281aa32becfc93bd9d5ab24fc310198'),
    ('core', 'function audit.verify(uuid)', '23e7bcd349a114cb21f8589283ec389aded59d0639991600112cfa20a5709d2e'),
    ('guard', 'function audit_guard.refuse_ddl()', 'c4f91ec05b2a65f653476484ffd2e42042f71abc0801378dbdd8fcdc9925a74a'),
    ('core', 'index audit.audit_idx', 'b5573ba64640401db24a9a23c5a1321ee93941af560e2c565a972a2ebf334d52'),
    ('core', 'index audit.audit_logs_company_idx', 'd572376a945336a2545bb581d2dab8dc96d47758daf061163d003ba3ba3f45ed'),
    ('core', 'index audit.audit_logs_entity_idx', '907865ad18fec369c704004a51f9e6ef116f4e389645a0b5e7317ca14cad86e1'),
    ('core', 'index audit.audit_logs_pkey', '1d0a7074f02a166af25ccadd097d4f4b90ab439a68309b434ea57e5e313ca2f3'),
    ('core', 'index audit.audit_logs_txid_brin', '567f3b9d7716a933014f79c0ca48783d71441678c6619662cf8e328f18e1d09e'),
    ('core', 'index audit.audit_logs_user_idx', '5b5bf2a90b70470d48e1d5d9ce492d560418ceae2828899e58279099a58a037a'),
    ('core', 'index audit.blocks_pkey', '221ee7c3d373f7ef831ac452aed5f538e42480c3d54ef6d72e2cdbbb9704e455'),
    ('core', 'index audit.blocks_xid_to_idx', '2fdafb211dbc5570f0fbff80654bbeb371e3c96d8a9064760f7c776caff9c058'),
    ('core', 'index audit.seal_lock_one_row', 'bb25628a4a5c03ce3c7febd2878405f98605e5d6d103a3aae121ce147cef8cb8'),
    ('core', 'index audit.strict_mode_login_role_key', 'd86cf9a96ded7c10dd230c02ac5ef6bb7ca474dac0ad481392b65c5faebe57eb'),
    ('core', 'index audit.tenant_logins_pkey', 'd9928346cdd055962be10fae04025c006d951f5ec2ee9b9726a2f0db2e96625e'),
    ('core', 'role audit_definer', '64b7c51c80289504aa6f665ee5e7ab72e1ef22f0eb29d9499e7133654107b9c8'),
    ('core', 'role audit_owner', '64b7c51c80289504aa6f665ee5e7ab72e1ef22f0eb29d9499e7133654107b9c8'),
    ('core', 'schema audit', 'e0571f5676b662e7d833f8a4c9da84fda22270e7fad58e39941ca3f7e93e797e'),
    ('guard', 'schema audit_guard', 'a35249eabc85cff693c43f67cf08016534483db34cce313c3603e340327649ec'),
    ('core', 'table audit.audit_logs', '689f50ed05cb6925142fb86346448bd049faff7ac261663b9ebc51eefb8fa394'),
    ('core', 'table audit.blocks', 'f5cb29cf221ddba95ec58cfb0ce14766c98ebd170cbcecbab3289036e81c3dce'),
    ('core', 'table audit.seal_lock', '2603ca2a426653d82b926b881f6256f701ee7d17ad253000b5f024befee0dc1a'),
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

-- CREATE OR REPLACE needs CREATE on the schema, which audit_definer holds
-- only while it replaces its function.
GRANT CREATE ON SCHEMA audit TO audit_definer;
SET LOCAL ROLE audit_definer;

CREATE OR REPLACE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A reader's `row_security = off` would make its reads an error, not a verdict.
SET row_security = on
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
    odd         pg_catalog.record;
    horizon     bigint;
BEGIN
    SELECT pg_catalog.string_agg(p, '; ') INTO problem FROM audit._protection_problems() AS p;
    IF problem IS NOT NULL THEN
        RETURN QUERY SELECT false, 'The protections of the log were tampered with: ' OPERATOR(pg_catalog.||) problem,
                            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;

    -- Read before the chain: a seal committing meanwhile only adds blocks
    -- above it, so no entry it seals can pass for an orphan below.
    SELECT COALESCE(pg_catalog.max(b.xid_to), 0) INTO horizon FROM audit.blocks b;

    -- Pass 1, the chain alone: numbering, ranges, links, Merkle roots, block hashes.
    -- IS DISTINCT FROM throughout: a NULL no block can hold must not compare as unknown, and pass.
    SELECT COALESCE(pg_catalog.array_agg(b ORDER BY b.block_no), '{}') INTO chain
    FROM audit.blocks b WHERE b.company_id = verify.company_id;
    FOR i IN 1 .. pg_catalog.cardinality(chain) LOOP
        blk := chain[i];
        IF blk.block_no IS DISTINCT FROM i::bigint THEN
            broken_why := pg_catalog.format('block %s is missing: the chain goes from block %s to block %s', i, i - 1, blk.block_no);
        ELSIF blk.format IS DISTINCT FROM 1::bigint THEN
            -- The block hash does not cover the form number; audit.seal() writes 1.
            broken_why := pg_catalog.format('block %s claims canonical form %s; it was sealed in form 1, and its format was changed', i, blk.format);
        ELSIF blk.xid_from IS NULL OR blk.xid_to IS NULL OR blk.merkle_root IS NULL OR blk.prev_hash IS NULL
              OR blk.block_hash IS NULL OR blk.sealed_at IS NULL OR NOT pg_catalog.isfinite(blk.sealed_at)
              OR pg_catalog.cardinality(blk.entry_ids) IS DISTINCT FROM pg_catalog.cardinality(blk.entry_hashes)
              OR pg_catalog.array_position(blk.entry_ids, NULL) IS NOT NULL
              OR pg_catalog.array_position(blk.entry_hashes, NULL) IS NOT NULL THEN
            broken_why := pg_catalog.format('block %s holds values audit.seal() never writes (a NULL, an infinite time, unpaired hashes): it was forged or altered', i);
        ELSIF blk.prev_hash IS DISTINCT FROM prev OR blk.xid_from IS DISTINCT FROM sealed_to THEN
            broken_why := pg_catalog.format('block %s does not follow block %s: the chain was cut, reordered or rewritten here', i, i - 1);
        ELSIF audit._merkle_root(blk.entry_hashes) IS DISTINCT FROM blk.merkle_root
              OR audit._block_hash(blk.company_id, blk.block_no, blk.xid_from, blk.xid_to,
                                   pg_catalog.cardinality(blk.entry_ids), blk.merkle_root, blk.prev_hash,
                                   blk.sealed_at) IS DISTINCT FROM blk.block_hash THEN
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

    -- Every row counts once, and only as an honest entry can be: record_audit()
    -- and the stamp give each a unique id, a finite time and no NULL where the
    -- schema forbids one. A row that is not, whatever its range, is a forgery.
    SELECT a.id, pg_catalog.count(*) AS copies INTO odd
    FROM audit.audit_logs a
    WHERE a.company_id = verify.company_id
    GROUP BY a.id
    HAVING pg_catalog.count(*) > 1
        OR pg_catalog.bool_or(a.id IS NULL OR a.action IS NULL OR a.entity IS NULL OR a.entity_id IS NULL
                              OR a.details IS NULL OR a.context IS NULL OR a.created_at IS NULL
                              -- the canonical form's 64 bits of microseconds hold it (infinity neither)
                              OR NOT (pg_catalog.extract('epoch', a.created_at) OPERATOR(pg_catalog.*) 1000000
                                      BETWEEN -9223372036854775808 AND 9223372036854775807)
                              -- a transaction id this snapshot has not seen given out yet
                              OR a.txid < 0
                              OR a.txid >= pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::pg_catalog.text::bigint)
    LIMIT 1;
    IF FOUND THEN
        IF odd.id IS NOT NULL AND odd.copies > 1 THEN
            RETURN QUERY SELECT false, pg_catalog.format(
                'Company %s: %s rows share the id %s, which belongs to one entry only: rows were inserted beside it.',
                verify.company_id, odd.copies, odd.id), NULL::pg_catalog.int8, odd.id;
        ELSE
            RETURN QUERY SELECT false, pg_catalog.format(
                'Company %s: entry %s holds a value no recorded entry can hold (a NULL the schema forbids, a time out of range, a negative transaction id or one not given out yet): it was forged or altered.',
                verify.company_id, COALESCE(odd.id::pg_catalog.text, 'without an id')), NULL::pg_catalog.int8, odd.id;
        END IF;
        RETURN;
    END IF;

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
      AND COALESCE(a.txid, 0) < horizon
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
    IF pg_catalog.cardinality(froms) = 0 AND unsealed = 0 THEN
        -- Not an OK: a company removed whole, blocks and all, looks the same (a digest tells).
        RETURN QUERY SELECT NULL::boolean, pg_catalog.format(
            'Company %s has no entries and no blocks: nothing to verify.', verify.company_id),
            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, pg_catalog.format(
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections in place.',
        verify.company_id, pg_catalog.cardinality(froms), entries, unsealed), NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
END;
$$;

COMMENT ON FUNCTION audit.verify(uuid) IS
$$Verifies one company's chain against its entries, and the protection surface of the log. Returns one row:
ok (true: verified; false: tampering found; NULL: nothing to verify), a report in words, and for a
failure the first broken block and entry. Reads no other company's entries.$$;

-- ---- sql/0085_digest.sql ----

ALTER FUNCTION audit.digest() SET row_security = on;

SET LOCAL ROLE audit_owner;
REVOKE CREATE ON SCHEMA audit FROM audit_definer;

-- ---- sql/0093_configuration_policies.sql ----

ALTER TABLE audit.strict_mode ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.tenant_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.seal_lock ENABLE ROW LEVEL SECURITY;

CREATE POLICY strict_mode_read ON audit.strict_mode FOR SELECT
    TO audit_writer, audit_reader, audit_definer, audit_admin USING (true);
CREATE POLICY strict_mode_admin_insert ON audit.strict_mode FOR INSERT TO audit_admin WITH CHECK (true);
CREATE POLICY strict_mode_admin_delete ON audit.strict_mode FOR DELETE TO audit_admin USING (true);
CREATE POLICY tenant_logins_read ON audit.tenant_logins FOR SELECT TO audit_definer, audit_admin USING (true);
CREATE POLICY tenant_logins_admin_insert ON audit.tenant_logins FOR INSERT TO audit_admin WITH CHECK (true);
CREATE POLICY tenant_logins_admin_delete ON audit.tenant_logins FOR DELETE TO audit_admin USING (true);
CREATE POLICY seal_lock_definer_read ON audit.seal_lock FOR SELECT TO audit_definer USING (true);
CREATE POLICY seal_lock_definer_update ON audit.seal_lock FOR UPDATE TO audit_definer USING (true) WITH CHECK (true);

COMMENT ON POLICY strict_mode_read ON audit.strict_mode IS 'Writers, readers, the function role and admins see where strict mode is on.';
COMMENT ON POLICY strict_mode_admin_insert ON audit.strict_mode IS 'audit_admin turns strict mode on (audit.enable_strict_mode()).';
COMMENT ON POLICY strict_mode_admin_delete ON audit.strict_mode IS 'audit_admin turns strict mode off (audit.disable_strict_mode()).';
COMMENT ON POLICY tenant_logins_read ON audit.tenant_logins IS 'The function role (tenant reading) and admins see the pins.';
COMMENT ON POLICY tenant_logins_admin_insert ON audit.tenant_logins IS 'audit_admin pins a tenant login (audit.pin_tenant()).';
COMMENT ON POLICY tenant_logins_admin_delete ON audit.tenant_logins IS 'audit_admin unpins a tenant login (audit.unpin_tenant()).';
COMMENT ON POLICY seal_lock_definer_read ON audit.seal_lock IS 'audit.seal() reads its turn.';
COMMENT ON POLICY seal_lock_definer_update ON audit.seal_lock IS 'audit.seal() takes its turn by updating the row.';

-- ---- sql/0090_grants.sql ----

REVOKE ALL ON FUNCTION audit._surface(), audit.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._surface(), audit._protection_problems(), audit.schema_version() TO audit_reader;
GRANT EXECUTE ON FUNCTION audit._surface() TO audit_definer;

RESET ROLE;
DO $give$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY COALESCE(pg_catalog.string_to_array(NULLIF(pg_catalog.current_setting('audit.roles_taken', true), ''), ','), '{}') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
    END LOOP;
END $give$;
