-- Verifying and digests in SQL on Citus: each company's chain checked on the
-- worker that holds it.
--
-- audit.verify() and audit.digest() of sql/0080_verify.sql and
-- sql/0085_digest.sql cannot run as they do on one PostgreSQL: on the
-- coordinator their reads would reach the workers through connections as
-- audit_definer, a role no one may log in as; a whole-row argument
-- (audit.entry_hash(a), array_agg(b)) would meet a shard's row type
-- (audit_logs_102008) where audit.audit_logs is expected; and the checks
-- that read the node's own counter (the newest horizon of an origin, a txid
-- not given out yet) mean something only on the node that wrote the entries.
-- So, as audit.seal_here() does (0030_sealing.sql):
--
-- * audit.verify(company_id) and audit.digest(company_id) are distributed by
--   company_id, co-located with the log, with force_delegation: Citus sends
--   `SELECT * FROM audit.verify($1)` to the company's worker, in transactions
--   too, as the calling login; there they run as audit_definer, naming the
--   company's two co-located shards (audit._local_shards()) and casting each
--   row to the log's row type. Called where Citus cannot route them (a
--   company that is not a constant or a parameter, a call nested in another
--   function), they run on the coordinator and refuse (AU007), saying how to
--   call them.
-- * Both are STRICT and return one value, never a set: Citus 13.0.5 crashes
--   the coordinator (signal 11) when it plans the delegation of a call whose
--   distribution argument is a NULL constant (0020_recording.sql), which any
--   login can write, EXECUTE or not (the planner runs first). PostgreSQL
--   folds a strict call with a NULL argument to NULL before Citus sees it,
--   but never a set-returning one, nor one returning record. So
--   audit.verify() returns here a row of the type audit.verification rather
--   than TABLE (...): the same columns, read the same way (SELECT ok, report
--   FROM audit.verify($1)); it always returned one row. audit.verify(NULL)
--   is one row of NULLs; audit.digest(NULL) NULL.
-- * audit.digest(), of every company, runs audit._digest_here() on every
--   worker (run_command_on_workers(), as the calling login, as audit.seal()
--   runs audit.seal_here()) and joins the heads.
--
-- * audit.verify() compares, on the worker, the protections it depends on
--   with a fresh install's worker (audit._worker_protection_problems()):
--   the objects outside the shards (functions, the shells of the tables,
--   the DDL guard), the company's two shards and this worker's copies of
--   the reference tables. The coordinator's own surface it does not see;
--   `audit-py verify` compares that too, and every shard of every worker.

-- The company's shards of audit.audit_logs and audit.blocks, when this node
-- holds them; else AU007, naming the caller.
CREATE FUNCTION audit._local_shards(company_id uuid, caller text, OUT logs text, OUT blocks text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.citus_is_coordinator() THEN
        SELECT pg_catalog.format('audit.%I', 'audit_logs_' OPERATOR(pg_catalog.||) l.shardid),
               pg_catalog.format('audit.%I', 'blocks_' OPERATOR(pg_catalog.||) b.shardid)
        INTO logs, blocks
        FROM pg_catalog.pg_dist_shard l
        JOIN pg_catalog.pg_dist_shard b ON b.logicalrelid OPERATOR(pg_catalog.=) 'audit.blocks'::pg_catalog.regclass
                                       AND b.shardminvalue OPERATOR(pg_catalog.=) l.shardminvalue
        JOIN pg_catalog.pg_dist_placement lp ON lp.shardid OPERATOR(pg_catalog.=) l.shardid
        JOIN pg_catalog.pg_dist_placement bp ON bp.shardid OPERATOR(pg_catalog.=) b.shardid
                                            AND bp.groupid OPERATOR(pg_catalog.=) lp.groupid
        WHERE l.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column(
                  'audit.audit_logs', _local_shards.company_id)
          AND lp.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g);
    END IF;
    IF logs IS NULL THEN
        RAISE EXCEPTION '%: the log is sharded by company (Citus), and this call was not sent to the node of company %',
                        caller, company_id
            USING ERRCODE = 'AU007', COLUMN = 'company_id',
                  HINT = pg_catalog.format('Call it alone in its statement, with company_id a constant or a parameter: SELECT * FROM %s($1). Citus then runs it on the company''s worker.', caller);
    END IF;
END;
$$;

COMMENT ON FUNCTION audit._local_shards(uuid, text) IS
    'Citus: the shards of audit.audit_logs and audit.blocks holding company_id, when they are placed on this node; else AU007, which names caller and says how to call it.';

-- What differs on this worker from a fresh install's worker, as
-- audit._protection_problems() says it on one PostgreSQL. The objects that
-- belong to no shard are compared whole. An object named after a shard of
-- the log's tables (the shard's id written "(shard)", as
-- audit_py/surface-citus-worker.json has them) must be as its table's
-- template has it, whichever shard placed here (a name alone does not make
-- an object a shard's: an index named after another company's shard is
-- still named here), and be one of its template's objects if the shard is
-- placed elsewhere; and the shards given, and this node's copies of the reference
-- tables, must have every object of their template. The hashes are written
-- by scripts/surface-citus; this function itself is left out (it holds
-- them), as audit._protection_problems() is.
CREATE FUNCTION audit._worker_protection_problems(logs_shard bigint, blocks_shard bigint)
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
-- Citus hides the shards from catalog queries otherwise; '\M' below is read as written.
SET citus.override_table_visibility = off
SET standard_conforming_strings = on
AS $$
WITH expected (part, object, fingerprint) AS (VALUES
-- BEGIN EXPECTED WORKER SURFACE (scripts/surface-citus)
    ('worker', 'composite type audit.page_entry', 'c738e78fed2ad89cc57ed6e7e2c581ea49a58fb7c4099050e521dfdf74468a7b'),
    ('worker', 'composite type audit.verification', '1ed6ec58ddd047141e0147c25feac0e18ee88cc07eaa06e869a7c2c979b0d0da'),
    ('worker', 'event trigger audit_citus_lift_ddl', '351165f2291a2856b907492b2188c0de225c6430a36fd12dc75dd04f0bdbc744'),
    ('worker', 'event trigger audit_citus_lift_drop', 'f27d819a1372a504c40e112978f6ce2121352bdb7f51b125be761ad7c312ff38'),
    ('worker', 'event trigger audit_refuse_ddl', '5d761190b3f33ffe87e39bbb13e229eda4f346c41c0163b6b09f8c0dc7a0005f'),
    ('worker', 'event trigger audit_refuse_drop', '9c58afa4180614a0a140259988a7381deabef9661c669cad870aa69b03e7f6fb'),
    ('worker', 'function audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'ec545e8a425831082eac93089cc650de74e34a9cc09b3f6c55a14dfe33dd1c63'),
    ('worker', 'function audit._block_hash_v2(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone,bigint)', 'c21e336bc542ce6e205ef2d08297a5808e2ee44f94463fd3709a166fd88eed6d'),
    ('worker', 'function audit._context_extra()', '8342650c1a29c507204861e0a7b30f3cd23fcad9f7471850781e1f9aadba744d'),
    ('worker', 'function audit._context_user(text)', 'e64555c99ac23c17af2d40b3cab591f5a36097f91eb605e8068daf3e1fb83f88'),
    ('worker', 'function audit._context_uuid(text)', 'b92683d59a6734b8a3a3f3e5caf80a49733a27d9e1bf0a86c769b931e2341b84'),
    ('worker', 'function audit._cursor_position(text,text)', '76c7f44685bf4eb8e68410ecad09f9864c567379edce2720fb565c722abc83b0'),
    ('worker', 'function audit._digest_here()', '1290ad24ccadeb452649be8689724ac87b19dea8f6458f3b21b1764e8d717f5b'),
    ('worker', 'function audit._entry_problem(uuid,text,text,uuid,jsonb)', '487a586dd6d3b5dd0449643c7988820de46f84f7b27128a02a69ea46cc20b911'),
    ('worker', 'function audit._local_shards(uuid,text)', '45642f02adb5e08edc72ff190f97c98ab971e33da91911542f0aa24acea37e04'),
    ('worker', 'function audit._merkle_root(bytea[])', '3b1c3123d07a250fb58bc36c4e76735adcad08dc778e21ddf902ef534ff30f68'),
    ('worker', 'function audit._micros(timestamp with time zone)', '4afc3b1a9921af2f972565e289b8d21043cad0ebf079d1a4ff54dfb6bba99994'),
    ('worker', 'function audit._missing_company(text,text)', '5311a8fec37ae1140129102f8d880394b3b63609228a91aa670e30ec76202e6f'),
    ('worker', 'function audit._new_entry_id()', 'c54ab7886f548c1f2b0e03ca6af5058521c1b8faf16ab92a04133ac658b320ff'),
    ('worker', 'function audit._no_company()', 'e8eb414c0036dbc0e954fbd7cdf6d17689683273fd966e1dd98c0ed32cde6eb0'),
    ('worker', 'function audit._opt_uuid_bytes(uuid)', '5358bc5544a3f2a6cd8cd597807774972e1eba87fd37e7400a90c82edaf23394'),
    ('worker', 'function audit._page_problem(integer,timestamp with time zone,uuid)', 'bb1a86924a188906f3238c96bb3a52a0d7525f15985ffdfa9dd65fad9848d0b8'),
    ('worker', 'function audit._pinned_companies()', 'd6233cdb73c69fe92c158bf35bb8c5baee784e7979a535919f52a5fb6adede10'),
    ('worker', 'function audit._protection_problems()', '87aaf2baf0fe4fdc73d9f8dfcae597c78f4e1456e03ea03a763ff71bd812363a'),
    ('worker', 'function audit._record_audit_at(uuid,text[],uuid[],jsonb[])', '065d3347ed988a2c7ed669dae1707a02dc10b6710b37b244985d80b7f70b3b32'),
    ('worker', 'function audit._refuse_change()', 'dee8e95aa94cb26729460279701fed3357b7039109d16e2cc54f45f3d752b27d'),
    ('worker', 'function audit._refuse_tracking(text)', '3d0a89e1ecb7397019e161a38e5d8123e610a40bd3696293ca9f307ba4bc9f6d'),
    ('worker', 'function audit._refuse_truncate()', '0f4a62fe29f4c46281fafc49abc9427f326fba7bde57eeaf2e23e692467d8f59'),
    ('worker', 'function audit._require_user(text)', 'f67d50dd5ede3f2242bf73714b191ff311016371b8f4c3e30e8d3d19942cf94d'),
    ('worker', 'function audit._stamp_entry()', 'a0281c9313d536252e7d726655be5ec797d84fb7899e82282b9424954ccf2818'),
    ('worker', 'function audit._str_bytes(text)', '2abf11dd0adcbe9f320ffc01c233d91933e5a69bc71829134753c87539ca32bf'),
    ('worker', 'function audit._surface()', '22bf36d92c7fd22918395afb775b96aca50744e8072374ae9bae0995bcec1998'),
    ('worker', 'function audit._track_changes()', 'b80959c9adada044a9d4cd64076928fd458341f6a4f36a0f5eddc54e85085c7b'),
    ('worker', 'function audit._untrackable(regclass)', '831cc03921684b6ec8f32095d158726d8cb3317b339f25f99d271a91c4233fbd'),
    ('worker', 'function audit.digest()', 'e84ff045c90dac4a85d874d72d2b8fb2c8dd8caa9ee4a08c00902bf073a65438'),
    ('worker', 'function audit.digest(uuid)', 'e7b4c796fbbe6300bc619268a3b68a8dcce969f1b8ba642cf7aa9c625820799b'),
    ('worker', 'function audit.disable_strict_mode(regrole)', '32b3afc9839e96568eea06d1437d753dcd38c54c99c10f7122c74fb3661291df'),
    ('worker', 'function audit.disable_tracking(regclass)', '4f783f536ad5e297d80661e08d0ec67ec83a9f4c72e8d22a43313c4d1069365b'),
    ('worker', 'function audit.enable_strict_mode(regrole)', '5f443e4f397942a093463bcd007f5aeb7908eef7d5ed3dfd087179520d4bdfdd'),
    ('worker', 'function audit.enable_tracking(regclass,text,text[])', 'b6f4ec860e5c6d2d61060e7fda9d531287ab942f11e0c58c70f7a28c5f3d9188'),
    ('worker', 'function audit.entry_hash(audit.audit_logs)', 'b89ba2f9cda32e5d496514094bfbc23f8603b75628dbe676fd71584717a5dd45'),
    ('worker', 'function audit.history(text,uuid,integer,timestamp with time zone,uuid,text)', '3f764a5ae5ae056d4d297c5d507b883eb5d4e6f6890c60b82045ebc823c491d0'),
    ('worker', 'function audit.page_cursor(timestamp with time zone,uuid)', '6405ce2404558ae790c47050e66c6e7f5bff35affc4a9403454cd18d61fd1f47'),
    ('worker', 'function audit.pin_tenant(regrole,uuid)', '0d715926550798bf7f59355be91140cc801d7653522c31f73cc264213ba14174'),
    ('worker', 'function audit.protection_problems()', '472f499d946824f1cde80d290912a26468ab6c48989d43406881e6f69bba7007'),
    ('worker', 'function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', 'df2f840382e74d270028aad8fd7316f52e5d6cd4a01b77d502ad78601f1c35f5'),
    ('worker', 'function audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', 'a1b2e22b88acc9a1e362ed30aa5735d8318a3daf166eb927f0496487ff65d261'),
    ('worker', 'function audit.record_audit_many_of(uuid,text[],text[],uuid[],jsonb[],uuid[],uuid[])', '862512fe49133e4f060d742d9f8c5bab01e353da0cfaeb67bd30cbfb4bce0c3a'),
    ('worker', 'function audit.schema_version()', '7e7f8a5fcf308b29321d8c33d244be3f2fe821fff7898ff404d5dbc76e9af198'),
    ('worker', 'function audit.seal()', 'a0fb919fcd2a7ca37c5d02d96cb562993bd1263d9e492eba6fd4d2511db55da4'),
    ('worker', 'function audit.seal_here()', '75fd9b2e7576a42bd3c5adfc7a598cb252a91e9d89f211716783dedf0b4dfc8a'),
    ('worker', 'function audit.search(uuid,uuid,uuid,text,text,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone,uuid,text)', 'be495ae728c56ab430e72c8e282a2cd8f13d62245a338fb5bca2e6b84f818d00'),
    ('worker', 'function audit.set_context(uuid,uuid,uuid,jsonb)', 'caa9b40e8c7111ba5dd1baab94353c6ce3884a0c5894f5b733a0ed78aa0a0cbf'),
    ('worker', 'function audit.unpin_tenant(regrole,uuid)', '56081996d751778f39c2fb17d00b3ffd7aea3e34d4eaba4205466bf8db0eb58d'),
    ('worker', 'function audit.verify(uuid)', '5b4c1b3e9a305ca1d3c7b6f27a852079410b1ccef10c94657176b4a5287bf521'),
    ('worker', 'function audit_guard.citus_lift()', '3d866fa29241b5f6fb4fff36f9b820a1383f37d478d38a4ef754deb3b826d52e'),
    ('worker', 'function audit_guard.refuse_ddl()', 'c4f91ec05b2a65f653476484ffd2e42042f71abc0801378dbdd8fcdc9925a74a'),
    ('worker', 'index audit.audit_idx', 'b5573ba64640401db24a9a23c5a1321ee93941af560e2c565a972a2ebf334d52'),
    ('worker', 'index audit.audit_logs_company_idx', 'd572376a945336a2545bb581d2dab8dc96d47758daf061163d003ba3ba3f45ed'),
    ('worker', 'index audit.audit_logs_entity_idx', '907865ad18fec369c704004a51f9e6ef116f4e389645a0b5e7317ca14cad86e1'),
    ('worker', 'index audit.audit_logs_origin_txid_idx', '5648eddf9780ba6a65fc03ba4187b38ef886da982efe3d6ce9de90440f67239a'),
    ('worker', 'index audit.audit_logs_pkey', 'e18d2237a3ab4bc66b79ecec9093ca21e6854975987ea2b9749644fa5db0fd26'),
    ('worker', 'index audit.audit_logs_txid_brin', '567f3b9d7716a933014f79c0ca48783d71441678c6619662cf8e328f18e1d09e'),
    ('worker', 'index audit.audit_logs_user_idx', '5b5bf2a90b70470d48e1d5d9ce492d560418ceae2828899e58279099a58a037a'),
    ('worker', 'index audit.blocks_origin_xid_to_idx', 'a3270df52b40a8f8e5a3c60586c499f228a77e897105af3637202dd7f7b796ad'),
    ('worker', 'index audit.blocks_pkey', '221ee7c3d373f7ef831ac452aed5f538e42480c3d54ef6d72e2cdbbb9704e455'),
    ('worker', 'index audit.blocks_xid_to_idx', '2fdafb211dbc5570f0fbff80654bbeb371e3c96d8a9064760f7c776caff9c058'),
    ('worker', 'index audit.strict_mode_login_role_key', '877dcbbe57af0f7e2bce894364bed33466a716d570a2f3ba5087d8611d65851d'),
    ('worker', 'index audit.tenant_logins_pkey', 'd9928346cdd055962be10fae04025c006d951f5ec2ee9b9726a2f0db2e96625e'),
    ('worker', 'role audit_definer', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('worker', 'role audit_owner', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('worker', 'schema audit', 'e0571f5676b662e7d833f8a4c9da84fda22270e7fad58e39941ca3f7e93e797e'),
    ('worker', 'schema audit_guard', 'a35249eabc85cff693c43f67cf08016534483db34cce313c3603e340327649ec'),
    ('worker', 'table audit.audit_logs', '63334c14c04ef90f958552226501cd7e17eff4a60279d0475e7802c0f7430a53'),
    ('worker', 'table audit.blocks', 'ad177145f6d4d60f2133a4514fb4447f578131f46941998ed417743210a7afcb'),
    ('worker', 'table audit.strict_mode', '9444306b32bb85fe722d56c9ab665b8cc7d2632fffcac30c1cd7d6e3ec75d8c1'),
    ('worker', 'table audit.tenant_logins', '9037919233409ce67ddcbf4bdac71397d5b7c270b813f9ad3a73f24c40a43f2d'),
    ('audit.audit_logs', 'index audit.audit_idx_(shard)', '1c289723598a0be6a957c71d25acf0c17e3e9bb1419497948319bbed6c4d4305'),
    ('audit.audit_logs', 'index audit.audit_logs_company_idx_(shard)', '4760778463116e443c4d88fed1e65d606caa62ca39063d5c51ac9a711ac0fb2a'),
    ('audit.audit_logs', 'index audit.audit_logs_entity_idx_(shard)', 'f209f995b36a99d92f35f58270be5153aa7de678cccd823185471d588c3920ef'),
    ('audit.audit_logs', 'index audit.audit_logs_origin_txid_idx_(shard)', '8e5384736581403ae202db38961a24ac50f17923593b670b55a81b20efe99819'),
    ('audit.audit_logs', 'index audit.audit_logs_pkey_(shard)', '3087dae89be702b532f2815ae186905484c0654415b93fba08009e564a93fc0a'),
    ('audit.audit_logs', 'index audit.audit_logs_txid_brin_(shard)', 'cd5fa4f0cd0401b0af3f9e5cfec458c220b22ea3dffcf46c96354f9a87c58413'),
    ('audit.audit_logs', 'index audit.audit_logs_user_idx_(shard)', '07e3d587ffbbcc354932bc38c29e2af04db22fc79be0d8d2465c463f4ab76c42'),
    ('audit.audit_logs', 'table audit.audit_logs_(shard)', 'af756537146e36b522061c14a54c796b9ae729e94444ce055f8ba4b2793e644f'),
    ('audit.blocks', 'index audit.blocks_origin_xid_to_idx_(shard)', '2c6ec5e05e0351eb05d3d39082b32ab35d8c54ac42189f88483949d2677606d6'),
    ('audit.blocks', 'index audit.blocks_pkey_(shard)', 'adca891c51c253089bcb0a995e2c342dc797e1777fe6e687a201e889b6e4f225'),
    ('audit.blocks', 'index audit.blocks_xid_to_idx_(shard)', '0af7d9faa84fbe446d35f13ae2326a884266c05751087c4283ae18e89349073b'),
    ('audit.blocks', 'table audit.blocks_(shard)', 'a88665c9a9d71be8abc75bc9b6832d532a9541c1ca1bb90b30ea7f2bfd674f23'),
    ('audit.strict_mode', 'index audit.strict_mode_login_role_key_(shard)', '04225c183195dcea1da923ecc86e1a3934d9af290c073137eefb89027fd04f39'),
    ('audit.strict_mode', 'table audit.strict_mode_(shard)', 'eae96205f0adea49432724bfd85952f7d1acb36bfa3b678114596403a7e4e218'),
    ('audit.tenant_logins', 'index audit.tenant_logins_pkey_(shard)', '4972b37dce15b85c9065b65030204feb3bace8291b8275ca9b4f60c47fb1f37e'),
    ('audit.tenant_logins', 'table audit.tenant_logins_(shard)', 'cabfed9bcbdc33b50f49da8eb63017c51b3685468366952b937f84744a3cfedd')
-- END EXPECTED WORKER SURFACE
),
checked (shard_id, part) AS (
    SELECT s.shardid, s.logicalrelid::pg_catalog.regclass::pg_catalog.text
    FROM pg_catalog.pg_dist_shard s
    JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
    WHERE p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
      AND (s.shardid OPERATOR(pg_catalog.=) ANY (ARRAY[logs_shard, blocks_shard])
           OR s.logicalrelid OPERATOR(pg_catalog.=) ANY (ARRAY['audit.strict_mode'::pg_catalog.regclass,
                                                                'audit.tenant_logins'::pg_catalog.regclass]))
),
surface AS (
    SELECT COALESCE(s.object, 'an object without a name') AS object,
           pg_catalog.regexp_replace(COALESCE(s.description, 'no description'), 'truncate_trigger_[0-9]+',
                                     'truncate_trigger_(oid)', 'g') AS description,
           d.shardid AS shard_id, d.logicalrelid::pg_catalog.regclass::pg_catalog.text AS shard_of,
           EXISTS (SELECT FROM pg_catalog.pg_dist_placement p
                   WHERE p.shardid OPERATOR(pg_catalog.=) d.shardid
                     AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g))
               AS placed_here
    FROM audit._surface() s
    LEFT JOIN pg_catalog.pg_dist_shard d
           ON d.shardid OPERATOR(pg_catalog.=) pg_catalog.substring(s.object, '_([0-9]+)$')::bigint
          AND d.logicalrelid OPERATOR(pg_catalog.=) ANY (ARRAY['audit.audit_logs'::pg_catalog.regclass,
                                                               'audit.blocks'::pg_catalog.regclass,
                                                               'audit.strict_mode'::pg_catalog.regclass,
                                                               'audit.tenant_logins'::pg_catalog.regclass])
),
actual (part, shard_id, placed_here, object, description) AS (
    SELECT 'worker', NULL::bigint, true, f.object, f.description
    FROM surface f
    WHERE f.shard_id IS NULL
      AND f.object OPERATOR(pg_catalog.<>) 'function audit._worker_protection_problems(bigint,bigint)'
    UNION ALL
    SELECT f.shard_of, f.shard_id, f.placed_here,
           pg_catalog.regexp_replace(f.object, '_' OPERATOR(pg_catalog.||) f.shard_id OPERATOR(pg_catalog.||) '\M',
                                     '_(shard)', 'g'),
           pg_catalog.regexp_replace(f.description, '_' OPERATOR(pg_catalog.||) f.shard_id OPERATOR(pg_catalog.||) '\M',
                                     '_(shard)', 'g')
    FROM surface f
    WHERE f.shard_id IS NOT NULL
),
hashed AS (
    SELECT a.part, a.shard_id, a.placed_here, a.object,
           pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(a.description, 'UTF8')), 'hex') AS fingerprint
    FROM actual a
),
parts (part, shard_id) AS (
    SELECT 'worker', NULL::bigint UNION ALL SELECT c.part, c.shard_id FROM checked c
)
SELECT pg_catalog.format('%s is missing', pg_catalog.replace(e.object, '(shard)', COALESCE(p.shard_id::pg_catalog.text, '')))
FROM (SELECT DISTINCT x.part, x.object FROM expected x) e
JOIN parts p ON p.part OPERATOR(pg_catalog.=) e.part
WHERE NOT EXISTS (SELECT FROM hashed h
                  WHERE h.part OPERATOR(pg_catalog.=) e.part AND h.object OPERATOR(pg_catalog.=) e.object
                    AND h.shard_id IS NOT DISTINCT FROM p.shard_id)
UNION ALL
SELECT pg_catalog.format('%s was added', pg_catalog.replace(h.object, '(shard)', COALESCE(h.shard_id::pg_catalog.text, '')))
FROM hashed h
WHERE NOT EXISTS (SELECT FROM expected e WHERE e.part OPERATOR(pg_catalog.=) h.part AND e.object OPERATOR(pg_catalog.=) h.object)
UNION ALL
SELECT pg_catalog.format('%s was changed (audit-py verify names what differs)',
                         pg_catalog.replace(h.object, '(shard)', COALESCE(h.shard_id::pg_catalog.text, '')))
FROM hashed h
-- A shard no longer placed here (moved away, its objects as the move left them until Citus drops
-- them) is held to its template's names only.
WHERE h.placed_here
  AND EXISTS (SELECT FROM expected e WHERE e.part OPERATOR(pg_catalog.=) h.part AND e.object OPERATOR(pg_catalog.=) h.object)
  AND NOT EXISTS (SELECT FROM expected e
                  WHERE e.part OPERATOR(pg_catalog.=) h.part AND e.object OPERATOR(pg_catalog.=) h.object
                    AND e.fingerprint OPERATOR(pg_catalog.=) h.fingerprint)
$$;

COMMENT ON FUNCTION audit._worker_protection_problems(bigint, bigint) IS
    'Citus: what differs on this worker from a fresh install''s worker: the objects outside the shards, the two shards given and this node''s copies of the reference tables; no row when all is in place.';

-- audit.verify()'s row, as a type of its own: PostgreSQL folds neither a
-- set-returning call nor one returning record (OUT parameters), only one
-- returning a named type.
CREATE TYPE audit.verification AS (ok boolean, report text, block_no bigint, entry_id uuid);
ALTER TYPE audit.verification OWNER TO audit_owner;
COMMENT ON TYPE audit.verification IS
    'Citus: the row audit.verify() returns: ok (true: verified; false: tampering found; NULL: nothing to verify), a report in words, and for a failure the first broken block and entry.';

DROP FUNCTION audit.verify(uuid);
CREATE FUNCTION audit.verify(company_id uuid)
RETURNS audit.verification
LANGUAGE plpgsql
STABLE
STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on
SET standard_conforming_strings = on
SET jit = off
AS $$
DECLARE
    ok          boolean;
    report      pg_catalog.text;
    block_no    bigint;
    entry_id    pg_catalog.uuid;
    here        bigint := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    shard       pg_catalog.record;
    local_blocks pg_catalog.text;
    chain       audit.blocks[];
    blk         audit.blocks;
    sound       integer := 0;
    broken_at   integer;
    broken_why  pg_catalog.text;
    prev        pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
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
    all_rows    bigint;
    horizons    pg_catalog.jsonb := '{}';
    part        pg_catalog.jsonb;
    found_rows  bigint;
BEGIN
    SELECT * INTO shard FROM audit._local_shards(verify.company_id, 'audit.verify');
    SELECT pg_catalog.string_agg(p, '; ') INTO report
    FROM audit._worker_protection_problems(pg_catalog.substring(shard.logs, '_([0-9]+)$')::bigint,
                                           pg_catalog.substring(shard.blocks, '_([0-9]+)$')::bigint) AS p;
    IF report IS NOT NULL THEN
        RETURN ROW(false, 'The protections of the log on this worker were tampered with: ' OPERATOR(pg_catalog.||) report,
                   NULL::pg_catalog.int8, NULL::pg_catalog.uuid)::audit.verification;
    END IF;

    -- Each origin's newest horizon, from the blocks of every company on this
    -- worker (audit.seal_here() seals them all at one horizon). Read before
    -- the chain: a seal committing meanwhile only adds blocks above these.
    FOR local_blocks IN
        SELECT pg_catalog.format('audit.%I', 'blocks_' OPERATOR(pg_catalog.||) b.shardid)
        FROM pg_catalog.pg_dist_shard b
        JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) b.shardid
        WHERE b.logicalrelid OPERATOR(pg_catalog.=) 'audit.blocks'::pg_catalog.regclass
          AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
    LOOP
        EXECUTE pg_catalog.format(
            'SELECT COALESCE(pg_catalog.jsonb_object_agg(h.o, h.top), ''{}'') FROM ('
            'SELECT COALESCE(b.origin::pg_catalog.text, ''none'') AS o, pg_catalog.max(b.xid_to) AS top'
            ' FROM %s b GROUP BY 1) h', local_blocks) INTO part;
        SELECT COALESCE(pg_catalog.jsonb_object_agg(t.k, t.top), '{}') INTO horizons
        FROM (SELECT e.key AS k, pg_catalog.max(e.value::bigint) AS top
              FROM (SELECT * FROM pg_catalog.jsonb_each_text(horizons)
                    UNION ALL SELECT * FROM pg_catalog.jsonb_each_text(part)) e
              GROUP BY e.key) t;
    END LOOP;

    -- From here on, audit.verify() of sql/0080_verify.sql, reading the
    -- company's shards by name. Pass 1, the chain alone.
    EXECUTE pg_catalog.format(
        'SELECT COALESCE(pg_catalog.array_agg(ROW(b.*)::audit.blocks ORDER BY b.block_no), ''{}'')'
        ' FROM %s b WHERE b.company_id OPERATOR(pg_catalog.=) $1', shard.blocks)
        INTO chain USING verify.company_id;
    FOR i IN 1 .. pg_catalog.cardinality(chain) LOOP
        blk := chain[i];
        origin_key := COALESCE(blk.origin::pg_catalog.text, 'none');
        IF blk.block_no IS DISTINCT FROM i::bigint THEN
            broken_why := pg_catalog.format('block %s is missing: the chain goes from block %s to block %s', i, i - 1, blk.block_no);
        ELSIF blk.format IS NULL OR blk.format NOT IN (1, 2) OR (blk.format = 1 AND blk.origin IS NOT NULL)
              OR (blk.format = 1 AND i > 1 AND chain[i - 1].format IS DISTINCT FROM 1::bigint) THEN
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

    -- Every row counts once, and only as an honest entry can be; "a
    -- transaction id not given out yet" is asked of this worker's counter,
    -- for the entries it wrote.
    EXECUTE pg_catalog.format($query$
        SELECT a.id, pg_catalog.count(*) AS copies
        FROM %s a
        WHERE a.company_id OPERATOR(pg_catalog.=) $1
        GROUP BY a.id
        HAVING pg_catalog.count(*) > 1
            OR pg_catalog.bool_or(a.id IS NULL OR a.action IS NULL OR a.entity IS NULL OR a.entity_id IS NULL
                                  OR a.details IS NULL OR a.context IS NULL OR a.created_at IS NULL
                                  OR NOT (pg_catalog.extract('epoch', a.created_at) OPERATOR(pg_catalog.*) 1000000
                                          BETWEEN -9223372036854775808 AND 9223372036854775807)
                                  OR a.txid < 0
                                  OR (a.origin OPERATOR(pg_catalog.=) $2
                                      AND a.txid >= pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::pg_catalog.text::bigint
                                      AND a.txid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text::bigint))
        LIMIT 1 $query$, shard.logs) INTO odd USING verify.company_id, here;
    -- (EXECUTE sets no FOUND.)
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows > 0 THEN
        IF odd.id IS NOT NULL AND odd.copies > 1 THEN
            SELECT false, pg_catalog.format(
                'Company %s: %s rows share the id %s, which belongs to one entry only: rows were inserted beside it.',
                verify.company_id, odd.copies, odd.id), NULL::pg_catalog.int8, odd.id INTO ok, report, block_no, entry_id;
        ELSE
            SELECT false, pg_catalog.format(
                'Company %s: entry %s holds a value no recorded entry can hold (a NULL the schema forbids, a time out of range, a negative transaction id or one not given out yet): it was forged or altered.',
                verify.company_id, COALESCE(odd.id::pg_catalog.text, 'without an id')), NULL::pg_catalog.int8, odd.id INTO ok, report, block_no, entry_id;
        END IF;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END IF;

    -- Pass 2, the entries of the sound part of the chain, each bucketed by
    -- the block of its origin whose range holds its txid.
    actual_n := 0;
    FOR bucket IN EXECUTE pg_catalog.format($query$
        WITH blocks_so_far AS (
            SELECT COALESCE(c.origin::pg_catalog.text, 'none') AS o, c.xid_from, c.xid_to, c.ordinality AS n
            FROM pg_catalog.unnest($2::audit.blocks[]) WITH ORDINALITY AS c
        ), ranges AS (
            SELECT s.o, pg_catalog.array_agg(s.xid_from ORDER BY s.xid_from) AS froms,
                   pg_catalog.array_agg(s.n ORDER BY s.xid_from) AS nos, pg_catalog.max(s.xid_to) AS sealed_to
            FROM blocks_so_far s GROUP BY s.o
        )
        SELECT r.nos[pg_catalog.width_bucket(COALESCE(a.txid, 0), r.froms)]::integer AS n,
               pg_catalog.array_agg(a.id ORDER BY a.id) AS ids,
               pg_catalog.array_agg(audit.entry_hash(ROW(a.*)::audit.audit_logs) ORDER BY a.id) AS hashes
        FROM %s a
        JOIN ranges r ON r.o OPERATOR(pg_catalog.=) COALESCE(a.origin::pg_catalog.text, 'none')
        WHERE a.company_id OPERATOR(pg_catalog.=) $1 AND COALESCE(a.txid, 0) < r.sealed_to
        GROUP BY 1
        ORDER BY 1 $query$, shard.logs) USING verify.company_id, chain[1:sound]
    LOOP
        FOR i IN actual_n + 1 .. bucket.n - 1 LOOP
            SELECT false, pg_catalog.format(
                'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
                i, verify.company_id, chain[i].entry_ids[1]), i::pg_catalog.int8, chain[i].entry_ids[1] INTO ok, report, block_no, entry_id;
            RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
        END LOOP;
        actual_n := bucket.n;
        blk := chain[bucket.n];
        IF bucket.ids IS DISTINCT FROM blk.entry_ids OR bucket.hashes IS DISTINCT FROM blk.entry_hashes THEN
            stored_ix := 1;
            actual_ix := 1;
            LOOP
                IF stored_ix > pg_catalog.cardinality(blk.entry_ids)
                   OR (actual_ix <= pg_catalog.cardinality(bucket.ids)
                       AND bucket.ids[actual_ix] OPERATOR(pg_catalog.<) blk.entry_ids[stored_ix]) THEN
                    SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was not sealed in this block; it was inserted afterwards.',
                        blk.block_no, verify.company_id, bucket.ids[actual_ix]), blk.block_no, bucket.ids[actual_ix] INTO ok, report, block_no, entry_id;
                    RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
                ELSIF actual_ix > pg_catalog.cardinality(bucket.ids)
                      OR bucket.ids[actual_ix] OPERATOR(pg_catalog.>) blk.entry_ids[stored_ix] THEN
                    SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
                        blk.block_no, verify.company_id, blk.entry_ids[stored_ix]), blk.block_no, blk.entry_ids[stored_ix] INTO ok, report, block_no, entry_id;
                    RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
                ELSIF bucket.hashes[actual_ix] OPERATOR(pg_catalog.<>) blk.entry_hashes[stored_ix] THEN
                    SELECT false, pg_catalog.format(
                        'Block %s of company %s: entry %s was changed after it was sealed.',
                        blk.block_no, verify.company_id, blk.entry_ids[stored_ix]), blk.block_no, blk.entry_ids[stored_ix] INTO ok, report, block_no, entry_id;
                    RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
                END IF;
                stored_ix := stored_ix + 1;
                actual_ix := actual_ix + 1;
            END LOOP;
        END IF;
        entries := entries + pg_catalog.cardinality(blk.entry_ids);
        read_rows := read_rows + pg_catalog.cardinality(bucket.ids);
    END LOOP;
    FOR i IN actual_n + 1 .. sound LOOP
        SELECT false, pg_catalog.format(
            'Block %s of company %s: entry %s was sealed in this block and is missing; it was deleted.',
            i, verify.company_id, chain[i].entry_ids[1]), i::pg_catalog.int8, chain[i].entry_ids[1] INTO ok, report, block_no, entry_id;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END LOOP;

    IF broken_at IS NOT NULL THEN
        SELECT false, pg_catalog.format('Company %s: %s.', verify.company_id, broken_why),
                            broken_at::pg_catalog.int8, NULL::pg_catalog.uuid INTO ok, report, block_no, entry_id;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END IF;

    EXECUTE pg_catalog.format($query$
        SELECT a.id FROM %s a
        WHERE a.company_id OPERATOR(pg_catalog.=) $1
          AND COALESCE(a.txid, 0) >= COALESCE(($2 ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0)
          AND COALESCE(a.txid, 0) < COALESCE(($3 ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0)
        ORDER BY a.id
        LIMIT 1 $query$, shard.logs) INTO orphan USING verify.company_id, ends, horizons;
    IF orphan IS NOT NULL THEN
        SELECT false, pg_catalog.format(
            'Company %s: entry %s lies in a sealed range but no block holds it: the company''s last block was removed, or the entry inserted afterwards.',
            verify.company_id, orphan), NULL::pg_catalog.int8, orphan INTO ok, report, block_no, entry_id;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END IF;

    EXECUTE pg_catalog.format($query$
        SELECT pg_catalog.count(*) FROM %s a
        WHERE a.company_id OPERATOR(pg_catalog.=) $1
          AND COALESCE(a.txid, 0) >= COALESCE(($2 ->> COALESCE(a.origin::pg_catalog.text, 'none'))::bigint, 0)
        $query$, shard.logs) INTO unsealed USING verify.company_id, ends;
    -- TABLESAMPLE SYSTEM (100) reads every page of the shard, never an index.
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.count(*) FROM %s a TABLESAMPLE SYSTEM (100) WHERE a.company_id OPERATOR(pg_catalog.=) $1',
        shard.logs) INTO all_rows USING verify.company_id;
    IF all_rows OPERATOR(pg_catalog.<>) read_rows + unsealed THEN
        SELECT false, pg_catalog.format(
            'Company %s: the table holds more of its rows than its indexes show: rows were kept out of the indexes.',
            verify.company_id), NULL::pg_catalog.int8, NULL::pg_catalog.uuid INTO ok, report, block_no, entry_id;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END IF;
    IF sound = 0 AND unsealed = 0 THEN
        SELECT NULL::boolean, pg_catalog.format(
            'Company %s has no entries and no blocks: nothing to verify.', verify.company_id),
            NULL::pg_catalog.int8, NULL::pg_catalog.uuid INTO ok, report, block_no, entry_id;
        RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
    END IF;
    SELECT true, pg_catalog.format(
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections in place on its worker.',
        verify.company_id, sound, entries, unsealed), NULL::pg_catalog.int8, NULL::pg_catalog.uuid INTO ok, report, block_no, entry_id;
    RETURN ROW(ok, report, block_no, entry_id)::audit.verification;
END;
$$;

ALTER FUNCTION audit.verify(uuid) OWNER TO audit_definer;
REVOKE ALL ON FUNCTION audit.verify(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.verify(uuid) TO audit_reader;

COMMENT ON FUNCTION audit.verify(uuid) IS
$$Citus: verifies one company's chain against its entries, on the worker that holds the company (Citus
sends the call there). Returns one row: ok (true: verified; false: tampering found; NULL: nothing to
verify), a report in words, and for a failure the first broken block and entry. It first compares the
worker's protections with a fresh install's (audit._worker_protection_problems()); the coordinator's
audit-py verify compares. STRICT, one row, not a set (Citus crashes on a set-returning call of a NULL
company): verify(NULL) is a row of NULLs.$$;

-- audit.digest() of one company, on its worker: the same document, with
-- only that company in chains (none when it has no block yet).
CREATE FUNCTION audit.digest(company_id uuid)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on
AS $$
DECLARE
    shard pg_catalog.record;
    head  pg_catalog.jsonb;
BEGIN
    SELECT * INTO shard FROM audit._local_shards(digest.company_id, 'audit.digest');
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.jsonb_build_object(''block_no'', b.block_no,'
        ' ''block_hash'', pg_catalog.encode(b.block_hash, ''hex''), ''xid_to'', b.xid_to)'
        ' FROM %s b WHERE b.company_id OPERATOR(pg_catalog.=) $1 ORDER BY b.block_no DESC LIMIT 1', shard.blocks)
        INTO head USING digest.company_id;
    RETURN pg_catalog.jsonb_build_object(
        'format', 1,
        'database', pg_catalog.current_database(),
        'taken_at', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'chains', CASE WHEN head IS NULL THEN '{}'::pg_catalog.jsonb
                       ELSE pg_catalog.jsonb_build_object(digest.company_id::pg_catalog.text, head) END);
END;
$$;

COMMENT ON FUNCTION audit.digest(uuid) IS
$$Citus: the newest block of one company's chain, read on its worker, as audit.digest() writes it:
{format, database, taken_at, chains: {company_id: {block_no, block_hash, xid_to}}}, chains empty when
the company has no block. STRICT: digest(NULL) is NULL.$$;

-- On a worker: the heads of every company it holds, {company_id: head}.
CREATE FUNCTION audit._digest_here()
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on
AS $$
DECLARE
    local_blocks pg_catalog.text;
    heads        pg_catalog.jsonb := '{}';
    part         pg_catalog.jsonb;
BEGIN
    IF pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'audit._digest_here(): run it on a worker; on the coordinator, audit.digest() runs it on every worker'
            USING ERRCODE = 'AU007';
    END IF;
    FOR local_blocks IN
        SELECT pg_catalog.format('audit.%I', 'blocks_' OPERATOR(pg_catalog.||) b.shardid)
        FROM pg_catalog.pg_dist_shard b
        JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) b.shardid
        WHERE b.logicalrelid OPERATOR(pg_catalog.=) 'audit.blocks'::pg_catalog.regclass
          AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
    LOOP
        EXECUTE pg_catalog.format(
            'SELECT COALESCE(pg_catalog.jsonb_object_agg(h.company_id, pg_catalog.jsonb_build_object('
            '''block_no'', h.block_no, ''block_hash'', pg_catalog.encode(h.block_hash, ''hex''), ''xid_to'', h.xid_to)), ''{}'')'
            ' FROM (SELECT DISTINCT ON (b.company_id) b.company_id, b.block_no, b.block_hash, b.xid_to'
            ' FROM %s b ORDER BY b.company_id, b.block_no DESC) h', local_blocks) INTO part;
        heads := heads OPERATOR(pg_catalog.||) part;
    END LOOP;
    RETURN heads;
END;
$$;

COMMENT ON FUNCTION audit._digest_here() IS
    'Citus, on a worker: the newest block of every company whose shards are placed here, {company_id: {block_no, block_hash, xid_to}}; audit.digest() joins every worker''s.';

-- The coordinator's audit.digest(): the same document as on one PostgreSQL,
-- each worker's heads read there by audit._digest_here(), as the calling
-- login (SECURITY INVOKER: run_command_on_workers() connects as the current
-- role, and audit_definer may not log in), each worker in a transaction of
-- its own: a seal committing meanwhile on one worker may or may not be in
-- it, as with a digest taken a moment earlier or later.
CREATE OR REPLACE FUNCTION audit.digest()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node  pg_catalog.record;
    heads pg_catalog.jsonb := '{}';
BEGIN
    FOR node IN
        SELECT w.nodename, w.nodeport, w.success, w.result
        FROM pg_catalog.run_command_on_workers($command$SELECT audit._digest_here()$command$) w
        ORDER BY w.nodename, w.nodeport
    LOOP
        IF NOT node.success THEN
            RAISE EXCEPTION 'audit.digest(): reading the chains on worker %:% failed: %', node.nodename, node.nodeport, node.result
                USING ERRCODE = 'AU007',
                      HINT = 'audit.digest(company_id) reads one company''s chain on its worker; audit-py digest every company''s.';
        END IF;
        heads := heads OPERATOR(pg_catalog.||) node.result::pg_catalog.jsonb;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object(
        'format', 1,
        'database', pg_catalog.current_database(),
        'taken_at', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'chains', heads);
END;
$$;

COMMENT ON FUNCTION audit.digest() IS
$$Citus: the newest block of every company's chain, read on each worker (audit._digest_here()), as JSON:
{format, database, taken_at, chains: {company_id: {block_no, block_hash, xid_to}}}.$$;

-- Ownership, privileges, and where each runs, as everywhere else
-- (sql/0090_grants.sql, sql/0098_ownership.sql): audit_definer owns the
-- SECURITY DEFINER functions; audit_owner the helpers, which only
-- audit_definer may call.
ALTER FUNCTION audit._local_shards(uuid, text) OWNER TO audit_owner;
ALTER FUNCTION audit._worker_protection_problems(bigint, bigint) OWNER TO audit_owner;
ALTER FUNCTION audit.digest(uuid) OWNER TO audit_definer;
ALTER FUNCTION audit._digest_here() OWNER TO audit_definer;
REVOKE ALL ON FUNCTION audit._local_shards(uuid, text), audit._worker_protection_problems(bigint, bigint),
    audit.digest(uuid), audit._digest_here() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._local_shards(uuid, text), audit._worker_protection_problems(bigint, bigint)
    TO audit_definer;
GRANT EXECUTE ON FUNCTION audit.digest(uuid), audit._digest_here() TO audit_reader;
SELECT pg_catalog.create_distributed_function('audit._local_shards(uuid, text)'::pg_catalog.regprocedure);
SELECT pg_catalog.create_distributed_function('audit._digest_here()'::pg_catalog.regprocedure);
SELECT pg_catalog.create_distributed_function('audit._worker_protection_problems(bigint, bigint)'::pg_catalog.regprocedure);
SELECT pg_catalog.create_distributed_function('audit.verify(uuid)'::pg_catalog.regprocedure, 'company_id',
                                              colocate_with => 'audit.audit_logs', force_delegation => true);
SELECT pg_catalog.create_distributed_function('audit.digest(uuid)'::pg_catalog.regprocedure, 'company_id',
                                              colocate_with => 'audit.audit_logs', force_delegation => true);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
