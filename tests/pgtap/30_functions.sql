-- The functions of schema audit: exactly those of the list below, each SECURITY DEFINER or not as listed,
-- and each executable by exactly the roles listed (and its owner), no other of the roles and not PUBLIC.
-- Who owns them and their pinned search_path: 50_ownership.sql. What they refuse: 60_refusals.sql.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
SELECT no_plan();

-- ===================================================================================================
-- THE FUNCTION LIST: every function of schema audit, one row each. The suite lists them nowhere else
-- (50_ownership.sql checks every function found; 60_refusals.sql and 70_guard.sql call a few).
-- A migration that adds, drops or changes the signature of a function adds, removes or edits its row.
--   signature         as a cast to regprocedure reads it (types as in sql/, timestamptz for short)
--   security_definer  SECURITY DEFINER (then owned by audit_definer) or not (owned by audit_owner)
--   execute           the roles granted EXECUTE besides the owner (sql/0090_grants.sql, 0092_tenant_readers.sql)
-- ===================================================================================================
CREATE TEMP TABLE pgtap_functions (
    n                serial,
    signature        text NOT NULL,
    security_definer boolean NOT NULL,
    execute          name[] NOT NULL
);
INSERT INTO pgtap_functions (signature, security_definer, execute) VALUES
    -- Recording (0040, 0050) and what guards and stamps it (0020, 0030, 0035)
    ('audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid)',                true,  '{audit_writer}'),
    ('audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[])', true, '{audit_writer}'),
    ('audit._entry_problem(uuid, text, text, uuid, jsonb)',                          false, '{audit_definer}'),
    ('audit._stamp_entry()',                                                         false, '{}'),
    ('audit._new_entry_id()',                                                        false, '{audit_definer}'),
    ('audit._refuse_change()',                                                       false, '{}'),
    -- The context (0036) and strict mode (0037)
    ('audit.set_context(uuid, uuid, uuid, jsonb)',                   false, '{audit_writer,audit_reader,audit_tenant_reader}'),
    ('audit._context_uuid(text)',                                    false, '{audit_definer}'),
    ('audit._context_extra()',                                       false, '{audit_definer}'),
    ('audit._context_user(text)',                                    false, '{audit_definer}'),
    ('audit._require_user(text)',                                    false, '{audit_definer}'),
    ('audit.enable_strict_mode(regrole)',                            false, '{audit_admin}'),
    ('audit.disable_strict_mode(regrole)',                           false, '{audit_admin}'),
    -- Tracking (0055)
    ('audit.enable_tracking(regclass, text, text[])',                false, '{audit_writer}'),
    ('audit.disable_tracking(regclass)',                             false, '{audit_writer}'),
    ('audit._track_changes()',                                       true,  '{audit_writer}'),
    ('audit._refuse_truncate()',                                     false, '{audit_writer}'),
    ('audit._untrackable(regclass)',                                 false, '{audit_writer,audit_definer}'),
    ('audit._refuse_tracking(text)',                                 false, '{audit_definer}'),
    ('audit._missing_company(text, text)',                           false, '{audit_definer}'),
    -- Reading (0058) and tenant readers (0092)
    ('audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid, text)',
                                                                     false, '{audit_reader,audit_tenant_reader}'),
    ('audit.history(text, uuid, integer, timestamptz, uuid, text)',  false, '{audit_reader,audit_tenant_reader}'),
    ('audit._page_problem(integer, timestamptz, uuid)',              false, '{audit_reader,audit_tenant_reader}'),
    ('audit.page_cursor(timestamptz, uuid)',                         false, '{audit_reader,audit_tenant_reader}'),
    ('audit._cursor_position(text, text)',                           false, '{audit_reader,audit_tenant_reader}'),
    ('audit._pinned_companies()',                                    true,  '{audit_tenant_reader}'),
    ('audit.pin_tenant(regrole, uuid)',                              false, '{audit_admin}'),
    ('audit.unpin_tenant(regrole, uuid)',                            false, '{audit_admin}'),
    -- The canonical form (0060) and sealing (0075)
    ('audit.seal()',                                                 true,  '{audit_admin}'),
    ('audit.entry_hash(audit.audit_logs)',                           false, '{audit_definer}'),
    ('audit._str_bytes(text)',                                       false, '{audit_definer}'),
    ('audit._opt_uuid_bytes(uuid)',                                  false, '{audit_definer}'),
    ('audit._micros(timestamptz)',                                   false, '{audit_definer}'),
    ('audit._merkle_root(bytea[])',                                  false, '{audit_definer}'),
    ('audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz)',
                                                                     false, '{audit_definer}'),
    ('audit._block_hash_v2(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz, bigint)',
                                                                     false, '{audit_definer}'),
    -- Verifying (0078, 0080, 0085)
    ('audit.verify(uuid)',                                           true,  '{audit_reader}'),
    ('audit.digest()',                                               true,  '{audit_reader}'),
    ('audit._surface()',                                             false, '{audit_reader,audit_definer}'),
    ('audit._protection_problems()',                                 false, '{audit_reader,audit_definer}'),
    ('audit.protection_problems()',                                  false, '{audit_reader}'),
    ('audit.schema_version()',                                       false, '{audit_reader}');
-- ===================================================================================================

-- Exactly the list: nothing missing, nothing more (an overload is a function of its own).
SELECT is(ARRAY(SELECT signature FROM pgtap_functions WHERE to_regprocedure(signature) IS NULL ORDER BY n),
          '{}'::text[], 'every function of the list exists in schema audit');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'audit'::regnamespace
                  AND p.oid NOT IN (SELECT to_regprocedure(signature) FROM pgtap_functions
                                    WHERE to_regprocedure(signature) IS NOT NULL)
                ORDER BY 1),
          '{}'::text[], 'schema audit has no function outside the list');
SELECT is_empty($$SELECT to_regprocedure(signature) FROM pgtap_functions WHERE to_regprocedure(signature) IS NOT NULL
                  GROUP BY 1 HAVING count(*) > 1$$, 'the list names each function once');
SELECT is_empty($$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'audit'::regnamespace AND prokind <> 'f'$$,
                'schema audit has no procedure, aggregate or window function');
-- A STRICT function returns NULL for a NULL argument without running: a STRICT record_audit() would
-- write nothing, and refuse nothing, for a NULL action.
SELECT is_empty($$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'audit'::regnamespace AND proisstrict$$,
                'no function of schema audit is STRICT');

-- Each function: SECURITY DEFINER or not, then EXECUTE for each role (and PUBLIC): exactly its owner
-- and the roles listed. (The rows are ordered first, then checked, so that the tests are numbered in order.)
SELECT CASE WHEN f.security_definer THEN is_definer('audit', f.name, f.args, f.signature || ' is SECURITY DEFINER')
            ELSE isnt_definer('audit', f.name, f.args, f.signature || ' is not SECURITY DEFINER') END
FROM (SELECT l.signature, l.security_definer, p.proname AS name, p.proargtypes::regtype[]::name[] AS args
      FROM pgtap_functions l JOIN pg_proc p ON p.oid = to_regprocedure(l.signature) ORDER BY l.n) AS f;

SELECT function_privs_are('audit', f.name, f.args, f.role,
                          CASE WHEN f.role = f.owner OR f.role = ANY (f.execute) THEN '{EXECUTE}' ELSE '{}' END::name[])
FROM (SELECT p.proname AS name, p.proargtypes::regtype[]::name[] AS args, l.execute, r.role,
             CASE WHEN l.security_definer THEN 'audit_definer' ELSE 'audit_owner' END::name AS owner
      FROM pgtap_functions l JOIN pg_proc p ON p.oid = to_regprocedure(l.signature)
      CROSS JOIN unnest(ARRAY['audit_writer', 'audit_reader', 'audit_tenant_reader', 'audit_admin',
                              'audit_owner', 'audit_definer', 'public']::name[]) WITH ORDINALITY AS r(role, k)
      ORDER BY l.n, r.k) AS f;

SELECT * FROM finish();
ROLLBACK;
