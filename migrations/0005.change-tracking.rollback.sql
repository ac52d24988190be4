-- Undoes 0005.change-tracking. Dropping the context column destroys it, and
-- the hashes of entries that carry one (version 2 of the canonical form) no
-- longer verify: the check below asks for audit.destroy_entries first. It
-- stops tracking every tracked table, which needs the right to drop their
-- triggers.
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-column, ban-drop-view

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

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

DO $rollback$
DECLARE
    tracked pg_catalog.regclass;
BEGIN
    FOR tracked IN
        SELECT DISTINCT t.tgrelid::pg_catalog.regclass FROM pg_catalog.pg_trigger t
        WHERE t.tgfoid IN ('audit._track_changes()'::pg_catalog.regprocedure,
                           'audit._refuse_truncate()'::pg_catalog.regprocedure)
    LOOP
        PERFORM audit.disable_tracking(tracked);
    END LOOP;
END;
$rollback$;

DROP VIEW audit.tracked_tables;
DROP FUNCTION audit.enable_tracking(regclass, text, text[]);
DROP FUNCTION audit.disable_tracking(regclass);
DROP FUNCTION audit._refuse_truncate();
DROP FUNCTION audit._track_changes();
DROP FUNCTION audit._missing_company(text, text);
DROP FUNCTION audit.enable_strict_mode(regrole);
DROP FUNCTION audit.disable_strict_mode(regrole);
DROP FUNCTION audit._require_user(text);
DROP TABLE audit.strict_mode;
DROP FUNCTION audit.set_context(uuid, uuid, uuid, jsonb);
DROP FUNCTION audit._context_user(text);
DROP FUNCTION audit._context_extra();
DROP FUNCTION audit._context_uuid(text);

-- audit._entry_problem(): the one statement of what makes an entry invalid,
-- shared by audit.record_audit() and audit.record_audit_many().
--
-- It returns NULL for a valid entry, else a message that starts with the name
-- of the offending parameter. It is a plain SQL function without a SET clause
-- so that PostgreSQL inlines it into its callers (a SET clause would prevent
-- that, and cost a call per entry in a batch); its callers run with
-- search_path = '', so its operators resolve in pg_catalog.

CREATE OR REPLACE FUNCTION audit._entry_problem(
    company_id uuid,
    action     text,
    entity     text,
    entity_id  uuid,
    details    jsonb
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
SELECT CASE
    WHEN company_id IS NULL THEN 'company_id must not be null: pass it, or set audit.company_id in the context'
    WHEN action IS NULL OR action OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'action must not be blank'
    WHEN entity IS NULL OR entity OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'entity must not be blank'
    WHEN entity_id IS NULL THEN 'entity_id must not be null'
    WHEN details IS NULL THEN 'details must not be null (pass ''{}'' for no details)'
    WHEN pg_catalog.jsonb_typeof(details) OPERATOR(pg_catalog.<>) 'object'
        THEN 'details must be a JSON object, not ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_typeof(details)
END
$$;

COMMENT ON FUNCTION audit._entry_problem(uuid, text, text, uuid, jsonb) IS
    'NULL when an entry is valid, else what is wrong with it, starting with the parameter''s name.';

-- audit.record_audit(): the one way to write an entry.
--
-- SECURITY DEFINER: it runs as the owner of the log, so audit_writer needs
-- EXECUTE on this function and no privilege on the table. The empty
-- search_path and the qualified names keep a caller's search_path from
-- redirecting anything it calls.
-- company_id, user_id and franchise_id passed as NULL come from the
-- transaction's context (0036_context.sql), whose extra keys are stored with
-- the entry. Bad input raises SQLSTATE AU002 (invalid entry) naming the
-- parameter, in the COLUMN field too, before anything is written; a
-- malformed context, or no user under strict mode, raises AU006.

CREATE OR REPLACE FUNCTION audit.record_audit(
    company_id   uuid,
    action       text,
    entity       text,
    entity_id    uuid,
    details      jsonb DEFAULT '{}',
    user_id      uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    -- A NULL parameter takes its value from the transaction's context (0036_context.sql).
    acting_company   uuid := COALESCE(record_audit.company_id, audit._context_uuid('audit.company_id'));
    acting_user      uuid := COALESCE(record_audit.user_id, audit._context_uuid('audit.user_id'));
    acting_franchise uuid := COALESCE(record_audit.franchise_id, audit._context_uuid('audit.franchise_id'));
    problem text := audit._entry_problem(acting_company, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF acting_user IS NULL THEN
        PERFORM audit._require_user('record_audit');
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    VALUES (acting_company, acting_franchise, acting_user, record_audit.action, record_audit.entity,
            record_audit.entity_id, record_audit.details,
            CASE WHEN COALESCE(pg_catalog.current_setting('audit.context', true), '') OPERATOR(pg_catalog.=) ''
                 THEN '{}' ELSE audit._context_extra() END)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) IS
$$Records one audit entry and returns its id. Parameters (named notation welcome):
company_id the tenant (NULL: from the context); action (required, not blank) e.g. CREATE_INVOICE;
entity (required, not blank) e.g. invoice; entity_id (required) the thing acted on;
details (default '{}') a JSON object of metadata; user_id (default NULL) who acted;
franchise_id (default NULL) the franchise. A NULL company_id, user_id or franchise_id comes
from the transaction's context (audit.set_context), whose extra keys are stored with the entry.
Bad input raises SQLSTATE AU002, a bad context or strict mode AU006; either writes nothing.
The entry commits or rolls back with the calling transaction.$$;

-- audit.record_audit_many(): a batch of entries in one call, all or nothing.
--
-- One array per parameter of audit.record_audit(), element i of each array
-- making entry i. The batch is checked as a whole before anything is
-- written, then inserted by one set-based INSERT: a call per entry would
-- cost several times as much. Returns the new ids in the entries' order.

CREATE OR REPLACE FUNCTION audit.record_audit_many(
    company_ids   uuid[],
    actions       text[],
    entities      text[],
    entity_ids    uuid[],
    details       jsonb[],
    user_ids      uuid[] DEFAULT NULL,
    franchise_ids uuid[] DEFAULT NULL
)
RETURNS SETOF uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    entry_count integer := pg_catalog.cardinality(company_ids);
    -- NULL elements take their value from the transaction's context (0036_context.sql).
    context_company   uuid := audit._context_uuid('audit.company_id');
    context_user      uuid := audit._context_uuid('audit.user_id');
    context_franchise uuid := audit._context_uuid('audit.franchise_id');
    context_extra     jsonb := audit._context_extra();
    bad record;
BEGIN
    IF company_ids IS NULL THEN
        RAISE EXCEPTION 'record_audit_many: company_ids must not be null'
            USING ERRCODE = 'AU002', COLUMN = 'company_ids';
    END IF;
    -- ROWS FROM pads short arrays with NULLs: a missing optional value must be
    -- said, not guessed.
    IF pg_catalog.cardinality(actions) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entities) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entity_ids) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(record_audit_many.details) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(user_ids) <> entry_count
       OR pg_catalog.cardinality(franchise_ids) <> entry_count THEN
        RAISE EXCEPTION 'record_audit_many: the arrays must all have one element per entry (company_ids has %, actions %, entities %, entity_ids %, details %, user_ids %, franchise_ids %)',
                entry_count, pg_catalog.cardinality(actions), pg_catalog.cardinality(entities),
                pg_catalog.cardinality(entity_ids), pg_catalog.cardinality(record_audit_many.details),
                pg_catalog.cardinality(user_ids), pg_catalog.cardinality(franchise_ids)
            USING ERRCODE = 'AU002';
    END IF;

    SELECT e.position, audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity,
                                            e.entity_id, e.details) AS problem
    INTO bad
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(actions), pg_catalog.unnest(entities),
                    pg_catalog.unnest(entity_ids), pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, action, entity, entity_id, details, position)
    WHERE audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity, e.entity_id,
                               e.details) IS NOT NULL
    ORDER BY e.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_audit_many: entry % (counting from 1): %', bad.position, bad.problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(bad.problem, ' ', 1);
    END IF;
    IF context_user IS NULL AND entry_count OPERATOR(pg_catalog.>) 0
       AND (user_ids IS NULL OR pg_catalog.array_position(user_ids, NULL) IS NOT NULL) THEN
        PERFORM audit._require_user('record_audit_many');
    END IF;

    RETURN QUERY
    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    SELECT COALESCE(e.company_id, context_company), COALESCE(e.franchise_id, context_franchise),
           COALESCE(e.user_id, context_user), e.action, e.entity, e.entity_id, e.details, context_extra
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(franchise_ids), pg_catalog.unnest(user_ids),
                    pg_catalog.unnest(actions), pg_catalog.unnest(entities), pg_catalog.unnest(entity_ids),
                    pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, franchise_id, user_id, action, entity, entity_id, details, position)
    ORDER BY e.position
    RETURNING audit_logs.id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]) IS
$$Records a batch of audit entries, all or nothing, and returns their ids in order.
Element i of each array makes entry i, as the parameters of audit.record_audit() do;
user_ids and franchise_ids may be NULL (none for any entry). NULL elements come from the
transaction's context, as in audit.record_audit(). Bad input raises SQLSTATE AU002,
naming the entry and the parameter, a bad context or strict mode AU006; either writes nothing.$$;

-- No SET clause either: audit.seal() and audit.verify() hash every entry
-- they read, and only an inlined function costs nothing per row.
-- An entry without context keeps the version 1 bytes, so that entries sealed
-- before contexts existed still verify; one with context is version 2, which
-- adds it. Emptying or adding a context therefore changes the hash as well.
CREATE OR REPLACE FUNCTION audit.entry_hash(entry audit.audit_logs)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.sha256(
    CASE WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
         THEN '\x01'::pg_catalog.bytea ELSE '\x02'::pg_catalog.bytea END
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.id)
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.company_id)
    OPERATOR(pg_catalog.||) audit._opt_uuid_bytes(entry.franchise_id)
    OPERATOR(pg_catalog.||) audit._opt_uuid_bytes(entry.user_id)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.action)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.entity)
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(entry.entity_id)
    OPERATOR(pg_catalog.||) audit._str_bytes(entry.details::pg_catalog.text)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(audit._micros(entry.created_at))
    OPERATOR(pg_catalog.||) pg_catalog.int8send(COALESCE(entry.txid, 0))
    OPERATOR(pg_catalog.||) CASE WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                                 THEN ''::pg_catalog.bytea
                                 ELSE audit._str_bytes(entry.context::pg_catalog.text) END
)
$$;

COMMENT ON FUNCTION audit.entry_hash(audit.audit_logs) IS
    'SHA-256 of an entry in canonical form (docs/canonical-form.md): version 1 without context, version 2 with.';

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = ''
AS $$
WITH expected_triggers (table_name, trigger_name, definition) AS (VALUES
    ('audit_logs', 'audit_logs_stamp',
     'CREATE TRIGGER audit_logs_stamp BEFORE INSERT ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry()'),
    ('audit_logs', 'audit_logs_refuse_update',
     'CREATE TRIGGER audit_logs_refuse_update BEFORE UPDATE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit_logs', 'audit_logs_refuse_delete',
     'CREATE TRIGGER audit_logs_refuse_delete BEFORE DELETE ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('audit_logs', 'audit_logs_refuse_truncate',
     'CREATE TRIGGER audit_logs_refuse_truncate BEFORE TRUNCATE ON audit.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_update',
     'CREATE TRIGGER blocks_refuse_update BEFORE UPDATE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_delete',
     'CREATE TRIGGER blocks_refuse_delete BEFORE DELETE ON audit.blocks FOR EACH ROW EXECUTE FUNCTION audit._refuse_change()'),
    ('blocks', 'blocks_refuse_truncate',
     'CREATE TRIGGER blocks_refuse_truncate BEFORE TRUNCATE ON audit.blocks FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change()')
),
-- SHA-256 of each protective function's body (prosrc), with its security
-- and settings, as the migrations install them. tests/test_tamper_evidence.py
-- recomputes them from a fresh install.
expected_functions (signature, fingerprint) AS (VALUES
    ('audit._refuse_change()', '7fa9740a29142d640bf401ccee6d23eb8d5261d0ddabbc90bad52145d83208db'),
    ('audit._stamp_entry()', '6af9bf4746e719b2c58ac0d6ed24008f5e5c15aec9a1900725d866e44e118563'),
    ('audit._context_uuid(text)', '681ef74ff338c3a728d9a27c63d3508cc212f7c0edf2c88a6fa47799eccff26c'),
    ('audit._context_extra()', '069c69b6b5d4c16f49480b9d5a8e98370c165facf366f60a8233c0a5e4244301'),
    ('audit._require_user(text)', 'ac71e815ee056bb7d6b766ef35928633aa8987598f92b6ea06d91ccd27156c54'),
    ('audit._entry_problem(uuid,text,text,uuid,jsonb)', '7fd1a507835b9058340df3be9388841b0a0f4a5e1abc1482ad74f0dac9042dab'),
    ('audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', 'bd53a996df0c5339480659300728d6616afd8b9590f2b535e1fa2a164a93e71d'),
    ('audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', '724e08c919693c6a5d8dd730c14af7d4ba861f787a6e8f4220dbbb32a9aa290b'),
    ('audit._missing_company(text,text)', '3e2e99b6c7368988df6596047fdf2baba0a213e2b9a7ebd7f519dffb92549fa1'),
    ('audit._track_changes()', '0be3611593844005c9b9b2a40f03f1f59d87d00503ade8548c99e7eef02412d7'),
    ('audit._refuse_truncate()', '9c1bba9d36861f80b7d21c419185a07b80f8862b3714f054dc25a3091b4c1f3c'),
    ('audit._str_bytes(text)', '3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518'),
    ('audit._opt_uuid_bytes(uuid)', '80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de'),
    ('audit._micros(timestamp with time zone)', '205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715'),
    ('audit.entry_hash(audit.audit_logs)', '0dd7c1be918428bad5f1965cbe63ec085a279e837dec273103418022e119ccb2'),
    ('audit._merkle_root(bytea[])', '0f338bf7343ce60f3aaeff245b193d2425645d9febc1463a5da121858e435dc7'),
    ('audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'c60b120fd3dcd41c1b40ca611dfd0ab024fcf6669f821d4291c13532dd90a535'),
    ('audit.seal()', '6e5df7321fc6c0c3ff2c2edf186c68c2a59d7588daa009f1b9507bbca99f910d')
),
actual_triggers AS (
    SELECT c.relname AS table_name, t.tgname AS trigger_name, t.tgenabled,
           pg_catalog.pg_get_triggerdef(t.oid) AS definition
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND NOT t.tgisinternal
),
actual_functions AS (
    SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS signature,
           pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
               p.prosrc OPERATOR(pg_catalog.||) pg_catalog.chr(10)
               OPERATOR(pg_catalog.||) p.prosecdef::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.chr(10)
               OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_to_string(p.proconfig, ','), ''),
               'UTF8')), 'hex') AS fingerprint
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace
)
SELECT pg_catalog.format('trigger %s on audit.%s is missing: it was dropped', e.trigger_name, e.table_name)
FROM expected_triggers e
LEFT JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.trigger_name IS NULL
UNION ALL
SELECT pg_catalog.format('trigger %s on audit.%s is %s, not enabled always', e.trigger_name, e.table_name,
                         CASE a.tgenabled WHEN 'D' THEN 'disabled' WHEN 'O' THEN 'enabled only for origin sessions'
                                          WHEN 'R' THEN 'enabled only for replica sessions' END)
FROM expected_triggers e
JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.tgenabled OPERATOR(pg_catalog.<>) 'A'
UNION ALL
SELECT pg_catalog.format('trigger %s on audit.%s was redefined: %s', e.trigger_name, e.table_name, a.definition)
FROM expected_triggers e
JOIN actual_triggers a USING (table_name, trigger_name)
WHERE a.definition OPERATOR(pg_catalog.<>) e.definition
UNION ALL
SELECT pg_catalog.format('rule %s on audit.%s was added: it can rewrite or swallow writes', w.rulename, c.relname)
FROM pg_catalog.pg_rewrite w
JOIN pg_catalog.pg_class c ON c.oid = w.ev_class
WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND c.relkind = 'r'
UNION ALL
SELECT pg_catalog.format('function %s is missing: it was dropped', e.signature)
FROM expected_functions e
LEFT JOIN actual_functions a USING (signature)
WHERE a.signature IS NULL
UNION ALL
SELECT pg_catalog.format('function %s was replaced: its definition is not the one installed', e.signature)
FROM expected_functions e
JOIN actual_functions a USING (signature)
WHERE a.fingerprint OPERATOR(pg_catalog.<>) e.fingerprint
$$;

ALTER TABLE audit.audit_logs DROP COLUMN context;
