-- Undoes 0012.portable-horizon. Entries written since record an origin, which
-- their hashes cover: without the column they no longer verify. A rollback is
-- for an uninstall (0001's removes the log) or an install no one wrote to; a
-- WARNING says when entries would be affected.
-- squawk-ignore-file ban-drop-column, ban-drop-function, require-concurrent-index-deletion

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
-- No login owns the log (0009.trust-boundary): act as its roles for this
-- transaction only; seal() and verify() belong to audit_definer.
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

DO $warn$
BEGIN
    IF EXISTS (SELECT FROM audit.audit_logs a WHERE a.origin IS NOT NULL)
       OR EXISTS (SELECT FROM audit.blocks b WHERE b.format OPERATOR(pg_catalog.<>) 1) THEN
        RAISE WARNING 'rolling back 0012.portable-horizon: entries and blocks that record an origin will no longer verify';
    END IF;
END
$warn$;

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
    ('core', 'function audit.pin_tenant(regrole,uuid)', '3393cf450dceceb736dd5209c4985b3e09bbb23336b685144b9caabff19c8cb1'),
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

CREATE OR REPLACE FUNCTION audit.schema_version()
RETURNS integer
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$SELECT 12$$;

COMMENT ON FUNCTION audit.schema_version() IS
    'The version of the log''s schema: the number of the newest migration that changed its protection surface.';

GRANT CREATE ON SCHEMA audit TO audit_definer;
SET LOCAL ROLE audit_definer;

CREATE OR REPLACE FUNCTION audit.seal()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The hash functions it inlines hold bytea literals, read as written whatever the caller's setting.
SET standard_conforming_strings = on
-- Its query's estimates (one branch per origin) exceed jit_above_cost; compiling it costs more than
-- hashing a batch of entries.
SET jit = off
AS $$
DECLARE
    here       bigint := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    last_here  bigint;
    horizon    bigint;
    start_here bigint;
    sealed     pg_catalog.timestamptz := pg_catalog.now();
    batch      pg_catalog.record;
    previous   pg_catalog.record;
    new_no     bigint;
    new_from   bigint;
    root       pg_catalog.bytea;
    zero_hash  CONSTANT pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    waiting    pg_catalog.record;
    blockers   pg_catalog.text;
    others_final boolean;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_subscription_rel r
               WHERE r.srrelid OPERATOR(pg_catalog.=) 'audit.audit_logs'::pg_catalog.regclass) THEN
        RAISE EXCEPTION 'audit.seal(): this database subscribes to audit.audit_logs; seal on its publisher'
            USING ERRCODE = 'AU008',
                  HINT = 'The publisher''s blocks arrive by replication. After a switchover, drop the subscription, then seal here.';
    END IF;
    -- Wait for our turn. Under REPEATABLE READ or SERIALIZABLE, a seal that
    -- committed after this transaction's snapshot was taken makes the update
    -- fail: its blocks are invisible here, so this call seals nothing rather
    -- than fork the chain, and says so.
    BEGIN
        UPDATE audit.seal_lock s SET seal_count = s.seal_count + 1 RETURNING s.origin INTO last_here;
    EXCEPTION WHEN serialization_failure THEN
        RAISE NOTICE 'audit.seal(): another seal committed after this transaction''s snapshot; nothing sealed'
            USING HINT = 'Seal again in a new transaction, or at READ COMMITTED.';
        RETURN;
    END;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit.seal(): audit.seal_lock has lost its row'
            USING ERRCODE = 'AU003', HINT = 'Someone with the owner''s rights removed it: restore it, with one row.';
    END IF;
    horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8;
    -- Every entry of this cluster below its newest sealed xid_to is sealed, for every company.
    SELECT COALESCE(pg_catalog.max(b.xid_to), 0) INTO start_here FROM audit.blocks b WHERE b.origin = here;

    -- Another cluster's entries are final once here: a transaction of this one
    -- still prepared for two-phase commit may hold some a subscription applied
    -- (two_phase), committed only later. Until none is left, they wait.
    others_final := NOT EXISTS (SELECT FROM pg_catalog.pg_prepared_xacts);

    FOR batch IN
        WITH RECURSIVE origins (origin) AS (
            -- One probe of the index per origin: there are few.
            SELECT pg_catalog.min(a.origin) FROM audit.audit_logs a WHERE a.origin IS NOT NULL
            UNION ALL
            SELECT (SELECT pg_catalog.min(a.origin) FROM audit.audit_logs a WHERE a.origin > r.origin)
            FROM origins r WHERE r.origin IS NOT NULL
        ), other_origins AS (
            -- Where each one's sealed ranges end (blocks_origin_xid_to_idx).
            SELECT r.origin, COALESCE((SELECT pg_catalog.max(b.xid_to) FROM audit.blocks b
                                       WHERE b.origin = r.origin), 0) AS sealed_to
            FROM origins r WHERE r.origin IS NOT NULL AND r.origin <> here
        )
        SELECT e.company_id, e.origin,
               pg_catalog.max(e.range_end) AS range_end,
               pg_catalog.array_agg(e.id ORDER BY e.id) AS ids,
               pg_catalog.array_agg(e.hash ORDER BY e.id) AS hashes
        FROM (-- This cluster's finished entries (the BRIN index on txid finds them).
              SELECT a.company_id, a.origin, a.id, audit.entry_hash(a) AS hash, horizon AS range_end
              FROM audit.audit_logs a
              WHERE a.origin = here AND a.txid >= start_here AND a.txid < horizon
              UNION ALL
              -- Every entry of another origin not sealed yet (restored, replicated,
              -- moved here), found origin by origin through audit_logs_origin_txid_idx.
              -- (LATERAL: a probe per origin, never a scan of the whole log.)
              SELECT a.company_id, a.origin, a.id, a.hash, a.range_end
              FROM other_origins o
              CROSS JOIN LATERAL (
                  SELECT x.company_id, x.origin, x.id, audit.entry_hash(x) AS hash,
                         pg_catalog.max(x.txid) OVER () + 1 AS range_end
                  FROM audit.audit_logs x
                  WHERE x.origin = o.origin AND x.txid >= o.sealed_to) a
              WHERE others_final
              UNION ALL
              -- The entries older than 0012, of no origin, where the last seal ran
              -- elsewhere or before 0012: there are no others.
              SELECT a.company_id, a.origin, a.id, audit.entry_hash(a),
                     pg_catalog.max(COALESCE(a.txid, 0)) OVER () + 1
              FROM audit.audit_logs a
              WHERE others_final AND last_here IS DISTINCT FROM here AND a.origin IS NULL
                AND COALESCE(a.txid, 0) >= COALESCE((SELECT pg_catalog.max(b.xid_to) FROM audit.blocks b
                                                     WHERE b.origin IS NULL), 0)) AS e
        GROUP BY e.company_id, e.origin
        -- Other origins first: a company's chain goes from the old cluster to this one.
        ORDER BY e.origin IS NOT DISTINCT FROM here, e.origin, e.company_id
    LOOP
        SELECT b.block_no, b.block_hash, b.origin, b.xid_to INTO previous
        FROM audit.blocks b
        WHERE b.company_id = batch.company_id
        ORDER BY b.block_no DESC
        LIMIT 1;
        -- Where the company's ranges of this origin stand: most often at its last block.
        IF previous.block_no IS NOT NULL AND previous.origin IS NOT DISTINCT FROM batch.origin THEN
            new_from := previous.xid_to;
        ELSE
            SELECT COALESCE(pg_catalog.max(b.xid_to), 0) INTO new_from
            FROM audit.blocks b
            WHERE b.company_id = batch.company_id AND b.origin IS NOT DISTINCT FROM batch.origin;
        END IF;
        new_no := COALESCE(previous.block_no, 0) + 1;
        root := audit._merkle_root(batch.hashes);
        INSERT INTO audit.blocks (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes,
                                  merkle_root, prev_hash, block_hash, sealed_at, format, origin)
        VALUES (batch.company_id, new_no, new_from, batch.range_end, batch.ids, batch.hashes, root,
                COALESCE(previous.block_hash, zero_hash),
                audit._block_hash_v2(batch.company_id, new_no, new_from, batch.range_end,
                                     pg_catalog.cardinality(batch.ids), root,
                                     COALESCE(previous.block_hash, zero_hash), sealed, batch.origin),
                sealed, 2, batch.origin);
        company_id := batch.company_id;
        block_no := new_no;
        entry_count := pg_catalog.cardinality(batch.ids);
        RETURN NEXT;
    END LOOP;
    UPDATE audit.seal_lock s SET origin = here;

    -- Say what holds the horizon back when entries have waited on it for long
    -- (audit.seal_notice_after, in seconds; a minute unless set): the oldest
    -- transactions still open, prepared ones included, in any database.
    SELECT pg_catalog.count(*) AS entries, pg_catalog.min(a.created_at) AS since INTO waiting
    FROM audit.audit_logs a WHERE a.origin = here AND a.txid >= horizon;
    IF waiting.entries > 0 AND waiting.since < pg_catalog.now() - pg_catalog.make_interval(
            secs => COALESCE(NULLIF(pg_catalog.current_setting('audit.seal_notice_after', true), '')::float8, 60)) THEN
        SELECT pg_catalog.string_agg(w.what, '; ' ORDER BY w.age DESC) INTO blockers
        FROM (SELECT pg_catalog.format('prepared transaction %L in database %s, prepared %s ago', p.gid, p.database,
                                       pg_catalog.date_trunc('second', pg_catalog.now() - p.prepared)) AS what,
                     pg_catalog.age(p.transaction) AS age
              FROM pg_catalog.pg_prepared_xacts p
              UNION ALL
              SELECT pg_catalog.format('session %s in database %s, login %s', a.pid, COALESCE(a.datname, '?'),
                                       COALESCE(a.usename, '?')),
                     GREATEST(pg_catalog.age(a.backend_xid), pg_catalog.age(a.backend_xmin))
              FROM pg_catalog.pg_stat_activity a
              WHERE a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
                AND (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL)
              ORDER BY 2 DESC
              LIMIT 3) w;
        RAISE NOTICE 'audit.seal(): % entries wait, the oldest since %, on transactions still open: %',
            waiting.entries, waiting.since, COALESCE(blockers, 'none this login can see')
            USING HINT = 'A transaction prepared for two-phase commit holds sealing back until COMMIT PREPARED or ROLLBACK PREPARED; nothing is lost meanwhile.';
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.seal() IS
$$Seals every finished, unsealed entry into a new block of its company's chain; returns one row per
block made. Run it on a schedule: pg_cron, cron with psql, or `audit-py seal --watch SECONDS`.
Entries of transactions still open are left for a later call; entries written on another cluster
(restored, replicated or moved from) are all sealed. Concurrent calls take turns; one whose snapshot
predates the last seal (REPEATABLE READ, SERIALIZABLE) seals nothing, with a NOTICE. Refused (AU008)
on a logical subscriber of the log.$$;

CREATE OR REPLACE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A reader's `row_security = off` would make its reads an error, not a verdict;
-- the hash functions it inlines hold bytea literals, read as written.
SET row_security = on
SET standard_conforming_strings = on
SET jit = off
AS $$
DECLARE
    here        bigint := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    problem     pg_catalog.text;
    chain       audit.blocks[];
    blk         audit.blocks;
    sound       integer := 0;
    broken_at   integer;
    broken_why  pg_catalog.text;
    prev        pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    -- For each origin ('none' for entries older than 0012), where its ranges stand so far.
    ends        pg_catalog.jsonb := '{}';
    origin_key  pg_catalog.text;
    entries     bigint := 0;
    unsealed    bigint;
    orphan      pg_catalog.uuid;
    bucket      pg_catalog.record;
    stored_ix   integer;
    actual_ix   integer;
    actual_n    integer;
    odd         pg_catalog.record;
    read_rows   bigint := 0;
    horizons    pg_catalog.jsonb;
BEGIN
    SELECT pg_catalog.string_agg(p, '; ') INTO problem FROM audit._protection_problems() AS p;
    IF problem IS NOT NULL THEN
        RETURN QUERY SELECT false, 'The protections of the log were tampered with: ' OPERATOR(pg_catalog.||) problem,
                            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;

    -- Read before the chain: a seal committing meanwhile only adds blocks
    -- above these, so no entry it seals can pass for an orphan below.
    SELECT COALESCE(pg_catalog.jsonb_object_agg(h.o, h.top), '{}')
    INTO horizons
    FROM (SELECT COALESCE(b.origin::pg_catalog.text, 'none') AS o, pg_catalog.max(b.xid_to) AS top
          FROM audit.blocks b GROUP BY 1) h;

    -- Pass 1, the chain alone: numbering, form, ranges, links, Merkle roots, block hashes.
    -- IS DISTINCT FROM throughout: a NULL no block can hold must not compare as unknown, and pass.
    SELECT COALESCE(pg_catalog.array_agg(b ORDER BY b.block_no), '{}') INTO chain
    FROM audit.blocks b WHERE b.company_id = verify.company_id;
    FOR i IN 1 .. pg_catalog.cardinality(chain) LOOP
        blk := chain[i];
        origin_key := COALESCE(blk.origin::pg_catalog.text, 'none');
        IF blk.block_no IS DISTINCT FROM i::bigint THEN
            broken_why := pg_catalog.format('block %s is missing: the chain goes from block %s to block %s', i, i - 1, blk.block_no);
        ELSIF blk.format IS NULL OR blk.format NOT IN (1, 2) OR (blk.format = 1 AND blk.origin IS NOT NULL)
              OR (blk.format = 1 AND i > 1 AND chain[i - 1].format IS DISTINCT FROM 1::bigint) THEN
            -- Form 1's hash does not cover the form number; audit.seal() wrote 1, and writes 2 since 0012.
            broken_why := pg_catalog.format('block %s claims canonical form %s, which is not the form it was sealed in: its format was changed', i, blk.format);
        ELSIF blk.xid_from IS NULL OR blk.xid_to IS NULL OR blk.merkle_root IS NULL OR blk.prev_hash IS NULL
              OR blk.block_hash IS NULL OR blk.sealed_at IS NULL OR NOT pg_catalog.isfinite(blk.sealed_at)
              OR pg_catalog.cardinality(blk.entry_ids) IS DISTINCT FROM pg_catalog.cardinality(blk.entry_hashes)
              OR pg_catalog.array_position(blk.entry_ids, NULL) IS NOT NULL
              OR pg_catalog.array_position(blk.entry_hashes, NULL) IS NOT NULL THEN
            broken_why := pg_catalog.format('block %s holds values audit.seal() never writes (a NULL, an infinite time, unpaired hashes): it was forged or altered', i);
        ELSIF blk.prev_hash IS DISTINCT FROM prev
              OR blk.xid_from IS DISTINCT FROM COALESCE((ends ->> origin_key)::bigint, 0) THEN
            broken_why := pg_catalog.format('block %s does not follow block %s: the chain was cut, reordered or rewritten here', i, i - 1);
        ELSIF audit._merkle_root(blk.entry_hashes) IS DISTINCT FROM blk.merkle_root
              -- (In parentheses: PL/pgSQL would end the condition at the CASE's THEN.)
              OR (CASE WHEN blk.format = 1
                       THEN audit._block_hash(blk.company_id, blk.block_no, blk.xid_from, blk.xid_to,
                                              pg_catalog.cardinality(blk.entry_ids), blk.merkle_root, blk.prev_hash,
                                              blk.sealed_at)
                       ELSE audit._block_hash_v2(blk.company_id, blk.block_no, blk.xid_from, blk.xid_to,
                                                 pg_catalog.cardinality(blk.entry_ids), blk.merkle_root, blk.prev_hash,
                                                 blk.sealed_at, blk.origin) END) IS DISTINCT FROM blk.block_hash THEN
            broken_why := pg_catalog.format('block %s was rewritten: its contents no longer match its hash', i);
        END IF;
        IF broken_why IS NOT NULL THEN
            broken_at := i;
            EXIT;
        END IF;
        ends := ends OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(origin_key, blk.xid_to);
        prev := blk.block_hash;
        sound := i;
    END LOOP;

    -- Every row counts once, and only as an honest entry can be: record_audit()
    -- and the stamp give each a unique id, a finite time, a transaction id this
    -- cluster has given out (for its own entries) and no NULL where the schema
    -- forbids one. A row that is not, whatever its range, is a forgery.
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
                              OR a.txid < 0
                              -- a transaction id this cluster has not given out yet
                              OR (a.origin = here
                                  AND a.txid >= pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::pg_catalog.text::bigint
                                  -- (the verifying transaction's own entries excepted)
                                  AND a.txid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text::bigint))
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
    -- bucketed by the block of its origin whose range holds its txid.
    actual_n := 0;
    FOR bucket IN
        WITH blocks_so_far AS (
            SELECT COALESCE(c.origin::pg_catalog.text, 'none') AS o, c.xid_from, c.xid_to, c.ordinality AS n
            FROM pg_catalog.unnest(chain[1:sound]) WITH ORDINALITY AS c
        ), ranges AS (
            SELECT s.o, pg_catalog.array_agg(s.xid_from ORDER BY s.xid_from) AS froms,
                   pg_catalog.array_agg(s.n ORDER BY s.xid_from) AS nos, pg_catalog.max(s.xid_to) AS sealed_to
            FROM blocks_so_far s GROUP BY s.o
        )
        SELECT r.nos[pg_catalog.width_bucket(COALESCE(a.txid, 0), r.froms)]::integer AS n,
               pg_catalog.array_agg(a.id ORDER BY a.id) AS ids,
               pg_catalog.array_agg(audit.entry_hash(a) ORDER BY a.id) AS hashes
        FROM audit.audit_logs a
        JOIN ranges r ON r.o = COALESCE(a.origin::pg_catalog.text, 'none')
        WHERE a.company_id = verify.company_id AND COALESCE(a.txid, 0) < r.sealed_to
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
        read_rows := read_rows + pg_catalog.cardinality(bucket.ids);
    END LOOP;
    FOR i IN actual_n + 1 .. sound LOOP
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

    -- audit.seal() seals every company of an origin up to the same horizon: an
    -- entry below its origin's newest horizon that no block holds lost its
    -- block, or came later.
    SELECT a.id INTO orphan FROM audit.audit_logs a
    WHERE a.company_id = verify.company_id
      AND COALESCE(a.txid, 0) >= COALESCE((ends ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0)
      AND COALESCE(a.txid, 0) < COALESCE((horizons ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0)
    ORDER BY a.id
    LIMIT 1;
    IF orphan IS NOT NULL THEN
        RETURN QUERY SELECT false, pg_catalog.format(
            'Company %s: entry %s lies in a sealed range but no block holds it: the company''s last block was removed, or the entry inserted afterwards.',
            verify.company_id, orphan), NULL::pg_catalog.int8, orphan;
        RETURN;
    END IF;

    SELECT pg_catalog.count(*) INTO unsealed FROM audit.audit_logs a
    WHERE a.company_id = verify.company_id
      AND COALESCE(a.txid, 0) >= COALESCE((ends ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0);
    -- The rows were read through indexes, as the planner chose: a row a superuser
    -- kept out of them (an index marked not ready, then ready again) is missed.
    -- TABLESAMPLE SYSTEM (100) reads every page of the table, never an index.
    IF (SELECT pg_catalog.count(*) FROM audit.audit_logs a TABLESAMPLE SYSTEM (100)
        WHERE a.company_id = verify.company_id) OPERATOR(pg_catalog.<>) read_rows + unsealed THEN
        RETURN QUERY SELECT false, pg_catalog.format(
            'Company %s: the table holds more of its rows than its indexes show: rows were kept out of the indexes.',
            verify.company_id), NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;
    IF sound = 0 AND unsealed = 0 THEN
        -- Not an OK: a company removed whole, blocks and all, looks the same (a digest tells).
        RETURN QUERY SELECT NULL::boolean, pg_catalog.format(
            'Company %s has no entries and no blocks: nothing to verify.', verify.company_id),
            NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, pg_catalog.format(
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections in place.',
        verify.company_id, sound, entries, unsealed), NULL::pg_catalog.int8, NULL::pg_catalog.uuid;
END;
$$;

COMMENT ON FUNCTION audit.verify(uuid) IS
$$Verifies one company's chain against its entries, and the protection surface of the log. Returns one row:
ok (true: verified; false: tampering found; NULL: nothing to verify), a report in words, and for a
failure the first broken block and entry. Reads no other company's entries.$$;

SET LOCAL ROLE audit_owner;
REVOKE CREATE ON SCHEMA audit FROM audit_definer;

CREATE OR REPLACE FUNCTION audit.entry_hash(entry audit.audit_logs)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.sha256(
    CASE WHEN entry.origin IS NOT NULL THEN '\x03'::pg_catalog.bytea
         WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
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
                                      AND entry.origin IS NULL
                                 THEN ''::pg_catalog.bytea
                                 ELSE audit._str_bytes(entry.context::pg_catalog.text) END
    OPERATOR(pg_catalog.||) CASE WHEN entry.origin IS NULL THEN ''::pg_catalog.bytea
                                 ELSE pg_catalog.int8send(entry.origin) END
)
$$;

COMMENT ON FUNCTION audit.entry_hash(audit.audit_logs) IS
    'SHA-256 of an entry in canonical form (docs/canonical-form.md): version 1 without context, version 2 with, version 3 with an origin.';

CREATE OR REPLACE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    NEW.txid := pg_catalog.txid_current();
    NEW.origin := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION audit._stamp_entry() IS
    'Trigger function: sets id, created_at, txid and origin of a new entry, whatever the insert supplied.';

CREATE OR REPLACE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO audit.tenant_logins (login_role, company_id) VALUES (pin_tenant.login_role, pin_tenant.company_id)
ON CONFLICT DO NOTHING;
$$;

COMMENT ON FUNCTION audit.pin_tenant(regrole, uuid) IS
    'Pins a login (or a role) to a company: as a tenant reader it reads that company, and any other it is pinned to, only.';

ALTER FUNCTION audit._merkle_root(bytea[]) RESET standard_conforming_strings;
ALTER FUNCTION audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz) RESET standard_conforming_strings;
ALTER FUNCTION audit._surface() RESET quote_all_identifiers;
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_stamp;
COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id, created_at, txid and origin of every new entry, but in replication sessions, which keep the publisher''s.';
DROP FUNCTION audit._block_hash_v2(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz, bigint);
ALTER TABLE audit.seal_lock REPLICA IDENTITY DEFAULT;
ALTER TABLE audit.strict_mode REPLICA IDENTITY DEFAULT;
DROP INDEX audit.blocks_origin_xid_to_idx;
DROP INDEX audit.audit_logs_origin_txid_idx;
ALTER TABLE audit.seal_lock DROP COLUMN origin;
ALTER TABLE audit.blocks DROP COLUMN origin;
ALTER TABLE audit.audit_logs DROP COLUMN origin;

RESET ROLE;
DO $give$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY COALESCE(pg_catalog.string_to_array(NULLIF(pg_catalog.current_setting('audit.roles_taken', true), ''), ','), '{}') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', role_name, current_user);
    END LOOP;
END $give$;
