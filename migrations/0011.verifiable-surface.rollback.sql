-- Undoes 0011.verifiable-surface: the verifiers go back to their list of
-- expected triggers and functions.
-- squawk-ignore-file ban-drop-function

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

REVOKE EXECUTE ON FUNCTION audit._protection_problems() FROM audit_reader;

CREATE OR REPLACE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
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
    ('audit._refuse_change()', '60d1a65caa43b1f954e013e0f6c023b52aa9029381bca78ba973835c0b4b1f9e'),
    ('audit._stamp_entry()', 'a6769bf2dd97358082a6930aba0dfc666014c9d0339bdb7fa8b432c4230a8d4f'),
    ('audit._context_uuid(text)', '33a6d3e1142b0be3713839242c3ea9977d7387299880768bbc9b0007b87320ca'),
    ('audit._context_user(text)', '78d8f5a770eceda0c9079a7340f8e3d57188e0cc42614406cc11ad71dce7d8dd'),
    ('audit._context_extra()', '908a9f6c09482249c86962eedb9fbbef6cae33755e7f4770da5e7b734702853d'),
    ('audit._require_user(text)', 'e8bef3fb1001c2a60b244686d67b4da2e2f8709dfc040c2cc4397ebfdf260e57'),
    ('audit._entry_problem(uuid,text,text,uuid,jsonb)', '7fd1a507835b9058340df3be9388841b0a0f4a5e1abc1482ad74f0dac9042dab'),
    ('audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '2c5d849f4601b6943d9f32e022ddb360bc89f17a5ce2835170d9d84d00a2e8a9'),
    ('audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', '55388e08b680d1771ac6bd8703ace635038ec21a9f49240fa0732512b91862a8'),
    ('audit._missing_company(text,text)', '3e2e99b6c7368988df6596047fdf2baba0a213e2b9a7ebd7f519dffb92549fa1'),
    ('audit._track_changes()', 'b1ab9483b016f715eb2f0425125a27a775154e92532917a235f8bdb8fb0f113f'),
    ('audit._untrackable(regclass)', 'be4a3e2a9beffbd9276f4360865895edd879166f3b5aabd9f8adf29afa5aa486'),
    ('audit._refuse_tracking(text)', '05b9a8d90f6be7cc436a1ab51499fe7df0c4d1053bd69dfe23cc68769c0a47e7'),
    ('audit._refuse_truncate()', '329b7d205b6bc7aa951a86d79378326cb27af14ac99b13246311bda196cff23d'),
    ('audit._str_bytes(text)', '3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518'),
    ('audit._opt_uuid_bytes(uuid)', '80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de'),
    ('audit._micros(timestamp with time zone)', '205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715'),
    ('audit.entry_hash(audit.audit_logs)', '0dd7c1be918428bad5f1965cbe63ec085a279e837dec273103418022e119ccb2'),
    ('audit._merkle_root(bytea[])', 'b7680745e537e2c63f0fddc9bc41b1277eae6b9369d306f44ea431e665340e41'),
    ('audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', '8067120b9910f7c2b6d7097c23d141b077c3bdf98639d37d9db218a66841b785'),
    ('audit.seal()', '3c08b5b60a7a5a690c2b72e344fc7697e98a0779f97b17eddc996c36e06bbca2')
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

COMMENT ON FUNCTION audit._protection_problems() IS
    'What differs in the protection surface of the log (audit._surface()) from a fresh install: objects missing, added or changed; no row when all is in place.';

GRANT CREATE ON SCHEMA audit TO audit_definer;
SET LOCAL ROLE audit_definer;

CREATE OR REPLACE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
BEGIN
    SELECT pg_catalog.string_agg(p, '; ') INTO problem FROM audit._protection_problems() AS p;
    IF problem IS NOT NULL THEN
        RETURN QUERY SELECT false, 'The protections of the log were tampered with: ' OPERATOR(pg_catalog.||) problem,
                            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;

    -- Pass 1, the chain alone: numbering, ranges, links, Merkle roots, block hashes.
    SELECT COALESCE(pg_catalog.array_agg(b ORDER BY b.block_no), '{}') INTO chain
    FROM audit.blocks b WHERE b.company_id = verify.company_id;
    FOR i IN 1 .. pg_catalog.cardinality(chain) LOOP
        blk := chain[i];
        IF blk.block_no OPERATOR(pg_catalog.<>) i THEN
            broken_why := pg_catalog.format('block %s is missing: the chain goes from block %s to block %s', i, i - 1, blk.block_no);
        ELSIF blk.prev_hash OPERATOR(pg_catalog.<>) prev OR blk.xid_from OPERATOR(pg_catalog.<>) sealed_to THEN
            broken_why := pg_catalog.format('block %s does not follow block %s: the chain was cut, reordered or rewritten here', i, i - 1);
        ELSIF audit._merkle_root(blk.entry_hashes) OPERATOR(pg_catalog.<>) blk.merkle_root
              OR audit._block_hash(blk.company_id, blk.block_no, blk.xid_from, blk.xid_to,
                                   pg_catalog.cardinality(blk.entry_ids), blk.merkle_root, blk.prev_hash,
                                   blk.sealed_at) OPERATOR(pg_catalog.<>) blk.block_hash THEN
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
      AND COALESCE(a.txid, 0) < (SELECT pg_catalog.max(b.xid_to) FROM audit.blocks b)
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
    RETURN QUERY SELECT true, pg_catalog.format(
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections in place.',
        verify.company_id, pg_catalog.cardinality(froms), entries, unsealed), NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
END;
$$;

COMMENT ON FUNCTION audit.verify(uuid) IS
$$Verifies one company's chain against its entries, and the protection surface of the log. Returns one row:
ok (true: verified; false: tampering found; NULL: nothing to verify), a report in words, and for a
failure the first broken block and entry. Reads no other company's entries.$$;

SET LOCAL ROLE audit_owner;
REVOKE CREATE ON SCHEMA audit FROM audit_definer;

DROP POLICY seal_lock_definer_update ON audit.seal_lock;
DROP POLICY seal_lock_definer_read ON audit.seal_lock;
DROP POLICY tenant_logins_admin_delete ON audit.tenant_logins;
DROP POLICY tenant_logins_admin_insert ON audit.tenant_logins;
DROP POLICY tenant_logins_read ON audit.tenant_logins;
DROP POLICY strict_mode_admin_delete ON audit.strict_mode;
DROP POLICY strict_mode_admin_insert ON audit.strict_mode;
DROP POLICY strict_mode_read ON audit.strict_mode;
ALTER TABLE audit.seal_lock DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit.tenant_logins DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit.strict_mode DISABLE ROW LEVEL SECURITY;

SET LOCAL ROLE audit_definer;
ALTER FUNCTION audit.digest() RESET row_security;
SET LOCAL ROLE audit_owner;

DROP FUNCTION audit.schema_version();
DROP FUNCTION audit._surface();

RESET ROLE;
DO $give$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY COALESCE(pg_catalog.string_to_array(NULLIF(pg_catalog.current_setting('audit.roles_taken', true), ''), ','), '{}') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
    END LOOP;
END $give$;
