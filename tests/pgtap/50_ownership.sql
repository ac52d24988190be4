-- Ownership: no login owns the log. audit_owner (NOLOGIN, held by no login: 40_privileges.sql) owns schema
-- audit, its tables, views and types, and the functions that run as their caller; audit_definer owns the
-- SECURITY DEFINER functions, which run as it, and each of those pins its search_path, pg_temp last.
-- These rules hold for every object of the schema, listed or not.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
SELECT no_plan();

SELECT schema_owner_is('audit', 'audit_owner');
SELECT CASE c.relkind WHEN 'v' THEN view_owner_is('audit', c.relname, 'audit_owner'::name)
                      ELSE table_owner_is('audit', c.relname, 'audit_owner'::name) END
FROM (SELECT relname, relkind FROM pg_class
      WHERE relnamespace = 'audit'::regnamespace AND relkind IN ('r', 'p', 'v') ORDER BY relname) AS c;
SELECT is_empty(
    $$SELECT oid::regclass, relowner::regrole FROM pg_class
      WHERE relnamespace = 'audit'::regnamespace AND relowner <> 'audit_owner'::regrole$$,
    'audit_owner owns every relation of schema audit (indexes, sequences, composite types included)');
SELECT is_empty(
    $$SELECT oid::regtype, typowner::regrole FROM pg_type
      WHERE typnamespace = 'audit'::regnamespace AND typowner <> 'audit_owner'::regrole$$,
    'audit_owner owns every type of schema audit');

-- Every function: SECURITY DEFINER ones by audit_definer, the others by audit_owner.
SELECT function_owner_is('audit', f.proname, f.args, f.owner,
                         f.signature || ' is owned by ' || f.owner)
FROM (SELECT p.proname, p.proargtypes::regtype[]::name[] AS args, p.oid::regprocedure::text AS signature,
             CASE WHEN p.prosecdef THEN 'audit_definer' ELSE 'audit_owner' END::name AS owner
      FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace ORDER BY p.oid::regprocedure::text) AS f;

-- SECURITY DEFINER functions run as audit_definer on the caller's behalf: each pins search_path to
-- pg_catalog first and pg_temp last, so that no object of the caller's (a pg_temp.uuid domain, a
-- table, an operator) is found before the system's.
SELECT ok(EXISTS (SELECT FROM unnest(f.proconfig) c WHERE c LIKE 'search\_path=pg\_catalog, %' AND c LIKE '%, pg\_temp'),
          f.signature || ' is SECURITY DEFINER and sets search_path = pg_catalog, ..., pg_temp')
FROM (SELECT p.oid::regprocedure::text AS signature, p.proconfig FROM pg_proc p
      WHERE p.pronamespace = 'audit'::regnamespace AND p.prosecdef ORDER BY 1) AS f;
SELECT isnt_empty(
    $$SELECT FROM pg_proc WHERE pronamespace = 'audit'::regnamespace AND prosecdef$$,
    'schema audit has SECURITY DEFINER functions (the checks above checked something)');

SELECT * FROM finish();
ROLLBACK;
