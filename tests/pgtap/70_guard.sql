-- The DDL guard of a superuser install (0004.hardening, 0009.trust-boundary): schema audit_guard, its
-- function, the two event triggers (ENABLE ALWAYS), and the DDL on schema audit they refuse, for every
-- role, superusers included (AU003), unless audit.allow_ddl names the transaction. Installed by a
-- login that is not a superuser (managed PostgreSQL), the log has no guard: this file then skips.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
-- The refused DDL takes strong locks (released when refused): wait 5 s at most.
SET LOCAL lock_timeout = '5s';
SELECT no_plan();

SELECT to_regnamespace('audit_guard') IS NOT NULL AS pgtap_guard,
       (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) AS pgtap_superuser \gset
\if :pgtap_guard
\if :pgtap_superuser

-- What it is: one function, in a schema of its own (DROP SCHEMA audit CASCADE would take one in schema
-- audit with it), owned by a superuser, pinning its search_path, executable by no role.
SELECT functions_are('audit_guard', ARRAY['refuse_ddl']);
SELECT has_function('audit_guard', 'refuse_ddl', '{}'::name[]);
SELECT ok((SELECT r.rolsuper FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'audit_guard'),
          'schema audit_guard is owned by a superuser');
SELECT ok((SELECT r.rolsuper FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
           WHERE p.oid = 'audit_guard.refuse_ddl()'::regprocedure),
          'audit_guard.refuse_ddl() is owned by a superuser');
SELECT ok(EXISTS (SELECT FROM pg_proc p, unnest(p.proconfig) c WHERE p.oid = 'audit_guard.refuse_ddl()'::regprocedure
                  AND c LIKE 'search\_path=pg\_catalog, %' AND c LIKE '%, pg\_temp'),
          'audit_guard.refuse_ddl() sets search_path = pg_catalog, ..., pg_temp');
SELECT schema_privs_are('audit_guard', r, '{}'::name[]) || E'\n' ||
       function_privs_are('audit_guard', 'refuse_ddl', '{}'::name[], r, '{}'::name[])
FROM unnest(ARRAY['audit_writer', 'audit_reader', 'audit_tenant_reader', 'audit_admin', 'audit_owner', 'audit_definer',
                  'public']::name[]) AS r;

-- The event triggers: on every command (no tag filter), ENABLE ALWAYS, owned by a superuser.
SELECT results_eq(
    $$SELECT e.evtname::text COLLATE "default", e.evtevent::text COLLATE "default", e.evtenabled::text, e.evttags IS NULL, r.rolsuper
      FROM pg_event_trigger e JOIN pg_roles r ON r.oid = e.evtowner
      WHERE e.evtfoid = 'audit_guard.refuse_ddl()'::regprocedure ORDER BY e.evtname$$,
    $$VALUES ('audit_refuse_ddl', 'ddl_command_end', 'A', true, true),
             ('audit_refuse_drop', 'sql_drop', 'A', true, true)$$,
    'the event triggers audit_refuse_ddl (ddl_command_end) and audit_refuse_drop (sql_drop): every command, ENABLE ALWAYS');

-- What it refuses, here to a superuser (AU003).
SELECT throws_ok(t.statement, 'AU003', t.message, 'a superuser: ' || t.statement || ' is refused (AU003)')
FROM (VALUES
    ($$ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update$$,
     'ALTER TABLE on audit.audit_logs is not allowed: schema audit is protected'),
    ($$ALTER TABLE audit.audit_logs ENABLE TRIGGER audit_logs_refuse_delete$$,
     'ALTER TABLE on audit.audit_logs is not allowed: schema audit is protected'),
    ($$ALTER TABLE audit.blocks DISABLE ROW LEVEL SECURITY$$,
     'ALTER TABLE on audit.blocks is not allowed: schema audit is protected'),
    ($$ALTER TABLE audit.audit_logs OWNER TO CURRENT_USER$$,
     'ALTER TABLE on audit.audit_logs is not allowed: schema audit is protected'),
    ($$DROP TRIGGER audit_logs_refuse_delete ON audit.audit_logs$$,
     'DROP TRIGGER on audit_logs_refuse_delete on audit.audit_logs is not allowed: schema audit is protected'),
    ($$CREATE TRIGGER pgtap_probe BEFORE INSERT ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry()$$,
     'CREATE TRIGGER on pgtap_probe on audit.audit_logs is not allowed: schema audit is protected'),
    ($$CREATE POLICY pgtap_probe ON audit.audit_logs FOR SELECT USING (true)$$,
     'CREATE POLICY on pgtap_probe on audit.audit_logs is not allowed: schema audit is protected'),
    ($$CREATE RULE pgtap_probe AS ON UPDATE TO audit.audit_logs DO INSTEAD NOTHING$$,
     'CREATE RULE on pgtap_probe on audit.audit_logs is not allowed: schema audit is protected'),
    ($$CREATE FUNCTION audit.pgtap_probe() RETURNS integer LANGUAGE sql AS 'SELECT 1'$$,
     'CREATE FUNCTION on audit.pgtap_probe() is not allowed: schema audit is protected'),
    ($$CREATE OR REPLACE FUNCTION audit._refuse_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'$$,
     'CREATE FUNCTION on audit._refuse_change() is not allowed: schema audit is protected'),
    ($$ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) RESET search_path$$,
     'ALTER FUNCTION on audit.record_audit(pg_catalog.uuid,pg_catalog.text,pg_catalog.text,pg_catalog.uuid,pg_catalog.jsonb,pg_catalog.uuid,pg_catalog.uuid) is not allowed: schema audit is protected'),
    ($$DROP TABLE audit.blocks$$, 'DROP TABLE on audit.blocks is not allowed: schema audit is protected'),
    ($$ALTER SCHEMA audit RENAME TO pgtap_renamed$$, 'ALTER SCHEMA on pgtap_renamed is not allowed: schema audit is protected'),
    ($$CREATE TEMP TABLE pgtap_child () INHERITS (audit.audit_logs)$$,
     'CREATE TABLE on pg_temp.pgtap_child is not allowed: schema audit is protected')
) AS t(statement, message);

-- A setting that names no transaction lifts nothing ...
SET LOCAL audit.allow_ddl = 'on';
SELECT throws_ok($$ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update$$, 'AU003',
                 'ALTER TABLE on audit.audit_logs is not allowed: schema audit is protected',
                 'SET audit.allow_ddl = on lifts nothing: ALTER TABLE ... DISABLE TRIGGER is still refused (AU003)');
-- ... one that names this transaction lets a migration through (here a change that changes nothing).
DO $$ BEGIN PERFORM set_config('audit.allow_ddl', pg_current_xact_id()::text, true); END $$;
SELECT lives_ok($$ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_update$$,
                'audit.allow_ddl set to this transaction''s id lifts the guard for it');
SET LOCAL audit.allow_ddl = '';

\else
SELECT skip('the DDL guard is tried as a superuser (run pg_prove as postgres)');
\endif
\else
SELECT skip('no DDL guard: the log was installed by a login that is not a superuser (no event triggers)');
\endif

SELECT * FROM finish();
ROLLBACK;
