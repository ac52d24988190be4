-- The triggers of schema audit: exactly these, each as defined, and the refusing ones ENABLE ALWAYS
-- (pg_trigger.tgenabled = 'A'), so that `SET session_replication_role = replica` does not skip them.
-- What they refuse, and with which SQLSTATE, is in 60_refusals.sql; the DDL guard's event triggers of a
-- superuser install are in 70_guard.sql.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
SELECT no_plan();

-- Exactly these triggers, table by table (internal ones included: there are none).
SELECT triggers_are('audit', 'audit_logs',
    ARRAY['audit_logs_stamp', 'audit_logs_refuse_update', 'audit_logs_refuse_delete', 'audit_logs_refuse_truncate']);
SELECT triggers_are('audit', 'blocks', ARRAY['blocks_refuse_update', 'blocks_refuse_delete', 'blocks_refuse_truncate']);
SELECT triggers_are('audit', 'seal_lock', '{}'::name[]);
SELECT triggers_are('audit', 'strict_mode', '{}'::name[]);
SELECT triggers_are('audit', 'tenant_logins', '{}'::name[]);
SELECT is_empty(
    $$SELECT t.tgrelid::regclass, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind NOT IN ('r', 'p')$$,
    'no trigger on a view of schema audit');

-- Each one: its definition (timing, event, level, function) and its enabled state:
-- A = ENABLE ALWAYS, fires in every session, replication sessions included;
-- O = fires in every session but replication ones (the stamp: a replica keeps the publisher's).
-- (Two assertions a row, one per line; correlated subqueries keep the list's order.)
SELECT is((SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgrelid = to_regclass(e.table_name) AND t.tgname = e.name),
          e.definition, e.name || ' is: ' || e.definition)
       || E'\n' ||
       is((SELECT t.tgenabled::text FROM pg_trigger t WHERE t.tgrelid = to_regclass(e.table_name) AND t.tgname = e.name),
          e.enabled,
          e.name || CASE e.enabled WHEN 'A' THEN ' is ENABLE ALWAYS (fires under session_replication_role = replica)'
                                   ELSE ' is enabled, but not in replication sessions' END)
FROM (VALUES
    ('audit.audit_logs', 'audit_logs_stamp', 'O',
     'CREATE TRIGGER audit_logs_stamp BEFORE INSERT ON audit.audit_logs FOR EACH ROW WHEN ((CURRENT_USER <> ''audit_definer''::name)) EXECUTE FUNCTION audit._stamp_entry()'),
    ('audit.audit_logs', 'audit_logs_refuse_update', 'A',
     'CREATE TRIGGER audit_logs_refuse_update BEFORE UPDATE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit.audit_logs', 'audit_logs_refuse_delete', 'A',
     'CREATE TRIGGER audit_logs_refuse_delete BEFORE DELETE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit.audit_logs', 'audit_logs_refuse_truncate', 'A',
     'CREATE TRIGGER audit_logs_refuse_truncate BEFORE TRUNCATE ON audit.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()'),
    ('audit.blocks', 'blocks_refuse_update', 'A',
     'CREATE TRIGGER blocks_refuse_update BEFORE UPDATE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit.blocks', 'blocks_refuse_delete', 'A',
     'CREATE TRIGGER blocks_refuse_delete BEFORE DELETE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit.blocks', 'blocks_refuse_truncate', 'A',
     'CREATE TRIGGER blocks_refuse_truncate BEFORE TRUNCATE ON audit.blocks FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()')
) AS e(table_name, name, enabled, definition);

-- PostgreSQL fires no trigger of a table whose relhastriggers is off.
SELECT ok(c.relhastriggers, c.oid::regclass || ' has relhastriggers set')
FROM pg_class c WHERE c.oid IN ('audit.audit_logs'::regclass, 'audit.blocks'::regclass);

-- The trigger functions pin their search_path, pg_temp last (they run in any session).
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
      WHERE p.pronamespace = 'audit'::regnamespace AND p.prorettype = 'trigger'::regtype
        AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
                        WHERE c LIKE 'search\_path=pg\_catalog, %' AND c LIKE '%, pg\_temp')$$,
    'every trigger function of schema audit sets search_path = pg_catalog, ..., pg_temp');

SELECT * FROM finish();
ROLLBACK;
