-- Each refusal, with its SQLSTATE and message, tried as the role that would try it: a superuser (the
-- login running the suite), audit_owner and audit_definer (SET LOCAL ROLE, as no login holds them), and
-- a test login for each other role, created here. Also what each role may do, so that a refusal is not
-- passing for the wrong reason, and what row-level security shows a tenant reader.
-- The entry, block and logins it makes are this transaction's, rolled back at the end: it leaves
-- nothing behind. It needs a superuser (CREATE ROLE, SET ROLE to every role, session_replication_role);
-- run as another login it skips.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
-- TRUNCATE takes the table's strongest lock (refused, it is released at once): wait 5 s at most.
SET LOCAL lock_timeout = '5s';
SELECT no_plan();

SELECT rolsuper AS pgtap_superuser FROM pg_roles WHERE rolname = session_user \gset
\if :pgtap_superuser

-- Logins for this transaction only (CREATE ROLE is transactional), with no password.
CREATE ROLE pgtap_audit_writer LOGIN IN ROLE audit_writer;
CREATE ROLE pgtap_audit_reader LOGIN IN ROLE audit_reader;
CREATE ROLE pgtap_audit_tenant LOGIN IN ROLE audit_tenant_reader;
CREATE ROLE pgtap_audit_admin LOGIN IN ROLE audit_admin;
CREATE ROLE pgtap_audit_outsider LOGIN;

-- A company of its own, one entry and one block of it; their ids in settings that every role can read.
DO $$
BEGIN
    PERFORM set_config('pgtap.company', gen_random_uuid()::text, true);
    PERFORM set_config('pgtap.other_company', gen_random_uuid()::text, true);
    PERFORM set_config('pgtap.entry', audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap',
                                                         gen_random_uuid(), '{}', gen_random_uuid())::text, true);
    INSERT INTO audit.blocks (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes, merkle_root, prev_hash,
                              block_hash, format)
    VALUES (current_setting('pgtap.company')::uuid, 1, 0, 1, '{}', '{}', '\x00', '\x00', '\x00', 2);
END $$;

-- ---------------------------------------------------------------------------------------------------
-- A superuser: UPDATE, DELETE and TRUNCATE of the log and of its blocks are refused (AU001) ...
SELECT throws_ok(t.statement, 'AU001', t.message, 'a superuser: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (AU001)')
FROM (VALUES
    ($$UPDATE audit.audit_logs SET details = '{"changed": true}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'UPDATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.audit_logs WHERE id = current_setting('pgtap.entry')::uuid$$,
     'DELETE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.audit_logs$$, 'TRUNCATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$UPDATE audit.blocks SET block_hash = '\x01' WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'UPDATE on audit.blocks is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.blocks WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'DELETE on audit.blocks is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.blocks$$, 'TRUNCATE on audit.blocks is not allowed: audit entries are immutable')
) AS t(statement, message);

-- ... and so they are in a replication session, which skips every trigger but ENABLE ALWAYS ones.
SET LOCAL session_replication_role = replica;
SELECT throws_ok(t.statement, 'AU001', t.message,
                 'a superuser, session_replication_role = replica: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (AU001)')
FROM (VALUES
    ($$UPDATE audit.audit_logs SET details = '{"changed": true}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'UPDATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.audit_logs WHERE id = current_setting('pgtap.entry')::uuid$$,
     'DELETE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.audit_logs$$, 'TRUNCATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$UPDATE audit.blocks SET block_hash = '\x01' WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'UPDATE on audit.blocks is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.blocks WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'DELETE on audit.blocks is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.blocks$$, 'TRUNCATE on audit.blocks is not allowed: audit entries are immutable')
) AS t(statement, message);
SET LOCAL session_replication_role = origin;

-- An entry's id, time and transaction are the database's, whatever an INSERT says.
WITH inserted AS (
    INSERT INTO audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at, txid)
    VALUES ('00000000-0000-4000-8000-000000000001', current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap',
            gen_random_uuid(), '{}', '2000-01-01', 1)
    RETURNING id, created_at, txid)
SELECT ok(id <> '00000000-0000-4000-8000-000000000001' AND created_at = now() AND txid = txid_current(),
          'a superuser''s INSERT gets the id, created_at and txid of the database (audit_logs_stamp)')
FROM inserted;

-- ---------------------------------------------------------------------------------------------------
-- audit_owner, which owns the tables and so holds every privilege on them: the triggers refuse it too.
SET LOCAL ROLE audit_owner;
SELECT throws_ok(t.statement, 'AU001', t.message, 'audit_owner: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (AU001)')
FROM (VALUES
    ($$UPDATE audit.audit_logs SET details = '{"changed": true}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'UPDATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.audit_logs WHERE id = current_setting('pgtap.entry')::uuid$$,
     'DELETE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.audit_logs$$, 'TRUNCATE on audit.audit_logs is not allowed: audit entries are immutable'),
    ($$UPDATE audit.blocks SET block_hash = '\x01' WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'UPDATE on audit.blocks is not allowed: audit entries are immutable'),
    ($$DELETE FROM audit.blocks WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'DELETE on audit.blocks is not allowed: audit entries are immutable'),
    ($$TRUNCATE audit.blocks$$, 'TRUNCATE on audit.blocks is not allowed: audit entries are immutable')
) AS t(statement, message);
RESET ROLE;

-- audit_definer, as which the SECURITY DEFINER functions run: it may insert and read, nothing more.
SET LOCAL ROLE audit_definer;
SELECT throws_ok(t.statement, '42501', t.message, 'audit_definer: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$UPDATE audit.audit_logs SET details = '{"changed": true}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'permission denied for table audit_logs'),
    ($$DELETE FROM audit.audit_logs WHERE id = current_setting('pgtap.entry')::uuid$$,
     'permission denied for table audit_logs'),
    ($$TRUNCATE audit.audit_logs$$, 'permission denied for table audit_logs'),
    ($$UPDATE audit.blocks SET block_hash = '\x01' WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'permission denied for table blocks'),
    ($$DELETE FROM audit.strict_mode$$, 'permission denied for table strict_mode'),
    ($$CREATE FUNCTION audit.pgtap_probe() RETURNS integer LANGUAGE sql AS 'SELECT 1'$$,
     'permission denied for schema audit')
) AS t(statement, message);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------------
-- A login granted audit_writer (an application) records, through the functions only ...
SET LOCAL ROLE pgtap_audit_writer;
SELECT lives_ok(
    $$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap', gen_random_uuid(),
                                '{"by": "writer"}', gen_random_uuid())$$,
    'a writer: audit.record_audit() records');
SELECT lives_ok(
    $$SELECT audit.record_audit_many(ARRAY[current_setting('pgtap.company')]::uuid[], '{PGTAP_CHECK}', '{pgtap}',
                                     ARRAY[gen_random_uuid()], '{"{}"}', ARRAY[gen_random_uuid()])$$,
    'a writer: audit.record_audit_many() records');
SELECT throws_ok(t.statement, '42501', t.message, 'a writer: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)
       VALUES (current_setting('pgtap.company')::uuid, 'FORGED', 'pgtap', gen_random_uuid(), '{}')$$,
     'permission denied for table audit_logs'),
    ($$SELECT * FROM audit.audit_logs$$, 'permission denied for table audit_logs'),
    ($$UPDATE audit.audit_logs SET details = '{}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'permission denied for table audit_logs'),
    ($$SELECT * FROM audit.blocks$$, 'permission denied for table blocks'),
    ($$DELETE FROM audit.strict_mode$$, 'permission denied for table strict_mode'),
    ($$SELECT audit.seal()$$, 'permission denied for function seal'),
    ($$SELECT audit.enable_strict_mode()$$, 'permission denied for function enable_strict_mode')
) AS t(statement, message);

-- ... and bad input is refused with AU002, the message naming the parameter; nothing is written.
SELECT throws_ok(t.statement, 'AU002', t.message, 'a writer: ' || t.message || ' (AU002)')
FROM (VALUES
    ($$SELECT audit.record_audit(NULL, 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$,
     'record_audit: company_id must not be null: pass it, or set audit.company_id in the context'),
    ($$SELECT audit.record_audit(gen_random_uuid(), '   ', 'pgtap', gen_random_uuid())$$,
     'record_audit: action must not be blank'),
    ($$SELECT audit.record_audit(gen_random_uuid(), NULL, 'pgtap', gen_random_uuid())$$,
     'record_audit: action must not be blank'),
    ($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', '', gen_random_uuid())$$,
     'record_audit: entity must not be blank'),
    ($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', 'pgtap', NULL)$$,
     'record_audit: entity_id must not be null'),
    ($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', 'pgtap', gen_random_uuid(), NULL)$$,
     'record_audit: details must not be null (pass ''{}'' for no details)'),
    ($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', 'pgtap', gen_random_uuid(), '[1, 2]')$$,
     'record_audit: details must be a JSON object, not array'),
    ($$SELECT audit.record_audit_many(ARRAY[gen_random_uuid(), gen_random_uuid()], '{PGTAP_CHECK, " "}', '{pgtap, pgtap}',
                                      ARRAY[gen_random_uuid(), gen_random_uuid()], '{"{}", "{}"}')$$,
     'record_audit_many: entry 2 (counting from 1): action must not be blank'),
    ($$SELECT audit.record_audit_many(NULL, '{}', '{}', '{}', '{}')$$,
     'record_audit_many: company_ids must not be null')
) AS t(statement, message);
SELECT throws_ok(
    $$SELECT audit.record_audit_many(ARRAY[gen_random_uuid()], '{A, B}', '{pgtap}', ARRAY[gen_random_uuid()], '{"{}"}')$$,
    'AU002', 'record_audit_many: the arrays must all have one element per entry (company_ids has 1, actions 2, entities 1, entity_ids 1, details 1, user_ids <NULL>, franchise_ids <NULL>)',
    'a writer: record_audit_many() with arrays of different lengths is refused (AU002)');

-- A malformed context is refused with AU006, naming the setting.
SELECT throws_ok($$SELECT audit.set_context(extra => '["not", "an", "object"]')$$, 'AU006',
                 'set_context: extra must be a JSON object, not array',
                 'a writer: set_context(extra => an array) is refused (AU006)');
SET LOCAL audit.user_id = 'not-a-uuid';
SELECT throws_ok($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$, 'AU006',
                 'context setting audit.user_id is not a uuid: ''not-a-uuid''',
                 'a writer: an entry under a malformed audit.user_id is refused (AU006)');
SET LOCAL audit.user_id = '';

-- Tracking: a table it owns, yes; the log's own tables, or a table without a uuid key, no (AU004); a
-- TRUNCATE of a tracked table cannot be recorded row by row (AU005).
CREATE TEMP TABLE pgtap_invoices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), company_id uuid NOT NULL, amount numeric);
CREATE TEMP TABLE pgtap_keyless (company_id uuid);
SELECT lives_ok($$SELECT audit.enable_tracking('pg_temp.pgtap_invoices')$$,
                'a writer: audit.enable_tracking() of a table it owns');
SELECT lives_ok(format($$INSERT INTO pg_temp.pgtap_invoices (company_id, amount) VALUES (%L, 10)$$,
                       current_setting('pgtap.company')),
                'a writer: a change to a tracked table is recorded');
SELECT throws_ok($$TRUNCATE pg_temp.pgtap_invoices$$, 'AU005',
                 format('TRUNCATE on %s.pgtap_invoices is not allowed: the table is tracked, and a TRUNCATE cannot be recorded row by row',
                        pg_my_temp_schema()::regnamespace),
                 'a writer: TRUNCATE of a tracked table is refused (AU005)');
SELECT throws_ok($$SELECT audit.enable_tracking('audit.audit_logs')$$, 'AU004',
                 'enable_tracking: audit.audit_logs belongs to the audit log itself',
                 'a writer: tracking the log itself is refused (AU004)');
SELECT throws_ok($$SELECT audit.enable_tracking('pg_temp.pgtap_keyless')$$, 'AU004',
                 'enable_tracking: pgtap_keyless has no primary key; tracking needs a single uuid primary key, recorded as entity_id',
                 'a writer: tracking a table without a primary key is refused (AU004)');
RESET ROLE;
SELECT is((SELECT count(*) FROM audit.audit_logs WHERE company_id = current_setting('pgtap.company')::uuid
                                                   AND action = 'CREATE_PGTAP_INVOICE'),
          1::bigint, 'the tracked INSERT wrote its entry');

-- ---------------------------------------------------------------------------------------------------
-- A login granted audit_reader (an auditor) reads and searches; it may not write, record or seal.
SET LOCAL ROLE pgtap_audit_reader;
SELECT ok(EXISTS (SELECT FROM audit.audit_logs WHERE id = current_setting('pgtap.entry')::uuid),
          'a reader: reads the entry');
SELECT is((SELECT count(*) FROM audit.search(current_setting('pgtap.company')::uuid, NULL, NULL, NULL, NULL, NULL,
                                             NULL, 100, NULL, NULL)),
          (SELECT count(*) FROM audit.audit_logs WHERE company_id = current_setting('pgtap.company')::uuid),
          'a reader: audit.search() finds the company''s entries');
SELECT throws_ok(t.statement, '42501', t.message, 'a reader: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$,
     'permission denied for function record_audit'),
    ($$SELECT audit.record_audit_many('{}', '{}', '{}', '{}', '{}')$$, 'permission denied for function record_audit_many'),
    ($$INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)
       VALUES (current_setting('pgtap.company')::uuid, 'FORGED', 'pgtap', gen_random_uuid(), '{}')$$,
     'permission denied for table audit_logs'),
    ($$UPDATE audit.audit_logs SET details = '{}' WHERE id = current_setting('pgtap.entry')::uuid$$,
     'permission denied for table audit_logs'),
    ($$DELETE FROM audit.blocks WHERE company_id = current_setting('pgtap.company')::uuid$$,
     'permission denied for table blocks'),
    ($$SELECT audit.seal()$$, 'permission denied for function seal'),
    ($$SELECT audit.enable_tracking('audit.blocks')$$, 'permission denied for function enable_tracking')
) AS t(statement, message);

-- Bad arguments to search() and history() are refused with AU007, naming the parameter. (Every
-- argument is given, so that each call names one signature.)
SELECT throws_ok(t.statement, 'AU007', t.message, 'a reader: ' || t.message || ' (AU007)')
FROM (VALUES
    ($$SELECT * FROM audit.search(NULL::uuid, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz,
                                  NULL::timestamptz, 100, NULL::timestamptz, NULL::uuid)$$,
     'search: company_id must not be null'),
    ($$SELECT * FROM audit.search(gen_random_uuid(), NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL)$$,
     'search: page_size must be between 1 and 100000'),
    ($$SELECT * FROM audit.search(gen_random_uuid(), NULL, NULL, NULL, NULL, NULL, NULL, 100001, NULL, NULL)$$,
     'search: page_size must be between 1 and 100000'),
    ($$SELECT * FROM audit.search(gen_random_uuid(), NULL, NULL, NULL, NULL, '2026-02-01', '2026-01-01', 100, NULL, NULL)$$,
     'search: since must not be after until'),
    ($$SELECT * FROM audit.search(gen_random_uuid(), NULL, NULL, NULL, NULL, NULL, NULL, 100, now(), NULL)$$,
     'search: after_created_at and after_id go together: both from the last entry of the previous page, or neither'),
    ($$SELECT * FROM audit.history(NULL::text, gen_random_uuid(), 100, NULL::timestamptz, NULL::uuid)$$,
     'history: entity must not be null'),
    ($$SELECT * FROM audit.history('pgtap', NULL::uuid, 100, NULL::timestamptz, NULL::uuid)$$,
     'history: entity_id must not be null'),
    ($$SELECT * FROM audit.history('pgtap', gen_random_uuid(), NULL::integer, NULL::timestamptz, NULL::uuid)$$,
     'history: page_size must be between 1 and 100000'),
    ($$SELECT * FROM audit.history('pgtap', gen_random_uuid(), 100, NULL::timestamptz, gen_random_uuid())$$,
     'history: after_created_at and after_id go together: both from the last entry of the previous page, or neither')
) AS t(statement, message);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------------
-- A login granted audit_admin (a sealing job) configures; it may not read, record, or change the log.
SET LOCAL ROLE pgtap_audit_admin;
SELECT lives_ok($$SELECT * FROM audit.strict_mode$$, 'an admin: reads where strict mode is on');
SELECT throws_ok(t.statement, '42501', t.message, 'an admin: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$SELECT * FROM audit.audit_logs$$, 'permission denied for table audit_logs'),
    ($$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$,
     'permission denied for function record_audit'),
    ($$UPDATE audit.strict_mode SET login_role = NULL$$, 'permission denied for table strict_mode'),
    ($$ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update$$, 'must be owner of table audit_logs'),
    ($$ALTER TABLE audit.audit_logs DISABLE ROW LEVEL SECURITY$$, 'must be owner of table audit_logs'),
    ($$DROP TABLE audit.blocks$$, 'must be owner of table blocks'),
    ($$CREATE OR REPLACE FUNCTION audit._refuse_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'$$,
     'permission denied for schema audit')
) AS t(statement, message);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------------
-- A login granted audit_tenant_reader (a company's admin) reads the company its context names, and
-- nothing else; pinned, only its own companies, whatever the context says.
SET LOCAL ROLE pgtap_audit_tenant;
SELECT is((SELECT count(*) FROM audit.audit_logs WHERE company_id = current_setting('pgtap.company')::uuid), 0::bigint,
          'a tenant reader: sees no entry without a company in its context');
DO $$ BEGIN PERFORM audit.set_context(company_id => current_setting('pgtap.company')::uuid); END $$;
SELECT ok((SELECT count(*) FROM audit.audit_logs WHERE company_id = current_setting('pgtap.company')::uuid) > 0
          AND NOT EXISTS (SELECT FROM audit.audit_logs WHERE company_id <> current_setting('pgtap.company')::uuid),
          'a tenant reader: sees the entries of the company in its context, and no other');
SELECT is((SELECT count(*) FROM audit.blocks), 1::bigint,
          'a tenant reader: sees the blocks of the company in its context, and no other');
SELECT throws_ok(t.statement, '42501', t.message, 'a tenant reader: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$SELECT * FROM audit.verify(current_setting('pgtap.company')::uuid)$$, 'permission denied for function verify'),
    ($$SELECT audit.digest()$$, 'permission denied for function digest'),
    ($$SELECT * FROM audit.tenant_logins$$, 'permission denied for table tenant_logins'),
    ($$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$,
     'permission denied for function record_audit')
) AS t(statement, message);
RESET ROLE;
-- Pins follow the session's login (session_user), which SET ROLE does not change: act as that login.
SET LOCAL ROLE pgtap_audit_admin;
SELECT lives_ok($$SELECT audit.pin_tenant('pgtap_audit_tenant', current_setting('pgtap.other_company')::uuid)$$,
                'an admin: audit.pin_tenant() pins a tenant reader to another company');
RESET ROLE;
SET LOCAL SESSION AUTHORIZATION pgtap_audit_tenant;
SELECT is((SELECT count(*) FROM audit.audit_logs WHERE company_id = current_setting('pgtap.company')::uuid), 0::bigint,
          'a pinned tenant reader: sees nothing of a company it is not pinned to, though its context names it');
RESET SESSION AUTHORIZATION;
SET LOCAL audit.company_id = '';

-- ---------------------------------------------------------------------------------------------------
-- A login granted nothing (PUBLIC): not even the schema.
SET LOCAL ROLE pgtap_audit_outsider;
SELECT throws_ok(t.statement, '42501', 'permission denied for schema audit',
                 'a login granted nothing: ' || regexp_replace(t.statement, '\s+', ' ', 'g') || ' is refused (42501)')
FROM (VALUES
    ($$SELECT audit.record_audit(gen_random_uuid(), 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$),
    ($$SELECT * FROM audit.audit_logs$$),
    ($$SELECT audit.set_context(user_id => gen_random_uuid())$$)
) AS t(statement);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------------
-- Strict mode, last (it covers the whole session from here): an entry with no user is refused (AU006).
-- It follows the session's login, as pins do.
SET LOCAL ROLE pgtap_audit_admin;
SELECT lives_ok($$SELECT audit.enable_strict_mode('pgtap_audit_writer')$$, 'an admin: audit.enable_strict_mode() for a login');
RESET ROLE;
SET LOCAL SESSION AUTHORIZATION pgtap_audit_writer;
SELECT throws_ok($$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap', gen_random_uuid())$$,
                 'AU006', 'record_audit: strict mode is on and no user_id is known',
                 'a writer in strict mode: an entry with no user_id is refused (AU006)');
SELECT lives_ok($$SELECT audit.record_audit(current_setting('pgtap.company')::uuid, 'PGTAP_CHECK', 'pgtap',
                                            gen_random_uuid(), '{}', gen_random_uuid())$$,
                'a writer in strict mode: an entry with a user_id is recorded');
RESET SESSION AUTHORIZATION;

\else
SELECT skip('the refusals are tried as each role, which needs a superuser (run pg_prove as postgres)');
\endif

SELECT * FROM finish();
ROLLBACK;
