-- audit.verify(company_id): checks one company's chain against its entries,
-- and that the protections are in place, reading no other company's entries.
--
-- It compares the protection surface (audit._surface(), 0078_surface.sql)
-- with a fresh install's, then recomputes, block by block: the numbering,
-- the contiguity of the transaction ranges, the link to the previous block,
-- each entry's hash, the Merkle root and the block hash. It stops at the
-- first broken block and names the first entry that no longer matches. A row
-- no honest entry can be (a shared id, a NULL the schema forbids, an infinite
-- time) is tampering too. `audit-py verify` makes the same checks in Python,
-- with its own code; it does not have to trust this function, which cannot
-- vouch for itself: replaced, it would say whatever its author wanted.

-- The SHA-256 of each object's description in a fresh install, as
-- audit_py/surface.json holds them in full (scripts/surface writes both).
-- Objects of the guard are expected whole, or not at all where no superuser
-- installed it. This function cannot hold its own hash: `audit-py verify`
-- checks it.
CREATE FUNCTION audit._protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH expected (part, object, fingerprint) AS (VALUES
-- BEGIN EXPECTED SURFACE (scripts/surface)
    ('core', 'composite type audit.page_entry', 'c738e78fed2ad89cc57ed6e7e2c581ea49a58fb7c4099050e521dfdf74468a7b'),
    ('guard', 'event trigger audit_refuse_ddl', '5d761190b3f33ffe87e39bbb13e229eda4f346c41c0163b6b09f8c0dc7a0005f'),
    ('guard', 'event trigger audit_refuse_drop', '9c58afa4180614a0a140259988a7381deabef9661c669cad870aa69b03e7f6fb'),
    ('core', 'function audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)', 'ec545e8a425831082eac93089cc650de74e34a9cc09b3f6c55a14dfe33dd1c63'),
    ('core', 'function audit._block_hash_v2(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone,bigint)', 'c21e336bc542ce6e205ef2d08297a5808e2ee44f94463fd3709a166fd88eed6d'),
    ('core', 'function audit._context_extra()', '8342650c1a29c507204861e0a7b30f3cd23fcad9f7471850781e1f9aadba744d'),
    ('core', 'function audit._context_user(text)', 'e64555c99ac23c17af2d40b3cab591f5a36097f91eb605e8068daf3e1fb83f88'),
    ('core', 'function audit._context_uuid(text)', '99aa019592dc50caea2aa615b36400de5a3849d4381a28f33b63a6e8c3bb2ec7'),
    ('core', 'function audit._cursor_position(text,text)', '76c7f44685bf4eb8e68410ecad09f9864c567379edce2720fb565c722abc83b0'),
    ('core', 'function audit._entry_problem(uuid,text,text,uuid,jsonb)', '487a586dd6d3b5dd0449643c7988820de46f84f7b27128a02a69ea46cc20b911'),
    ('core', 'function audit._merkle_root(bytea[])', '3b1c3123d07a250fb58bc36c4e76735adcad08dc778e21ddf902ef534ff30f68'),
    ('core', 'function audit._micros(timestamp with time zone)', '4afc3b1a9921af2f972565e289b8d21043cad0ebf079d1a4ff54dfb6bba99994'),
    ('core', 'function audit._missing_company(text,text)', '5311a8fec37ae1140129102f8d880394b3b63609228a91aa670e30ec76202e6f'),
    ('core', 'function audit._new_entry_id()', 'c54ab7886f548c1f2b0e03ca6af5058521c1b8faf16ab92a04133ac658b320ff'),
    ('core', 'function audit._opt_uuid_bytes(uuid)', '5358bc5544a3f2a6cd8cd597807774972e1eba87fd37e7400a90c82edaf23394'),
    ('core', 'function audit._page_problem(integer,timestamp with time zone,uuid)', 'bb1a86924a188906f3238c96bb3a52a0d7525f15985ffdfa9dd65fad9848d0b8'),
    ('core', 'function audit._pinned_companies()', '078ade200354cca6f8173e9b44a42e0c9ed3d3e5614189bfc85b268472f2891f'),
    ('core', 'function audit._refuse_change()', 'dee8e95aa94cb26729460279701fed3357b7039109d16e2cc54f45f3d752b27d'),
    ('core', 'function audit._refuse_tracking(text)', '3d0a89e1ecb7397019e161a38e5d8123e610a40bd3696293ca9f307ba4bc9f6d'),
    ('core', 'function audit._refuse_truncate()', '0f4a62fe29f4c46281fafc49abc9427f326fba7bde57eeaf2e23e692467d8f59'),
    ('core', 'function audit._require_user(text)', '6ba339c4ddd82aceeb74dd2362b648f47b35a960077cdbb5840fdd9f3331f2be'),
    ('core', 'function audit._stamp_entry()', 'a0281c9313d536252e7d726655be5ec797d84fb7899e82282b9424954ccf2818'),
    ('core', 'function audit._str_bytes(text)', '2abf11dd0adcbe9f320ffc01c233d91933e5a69bc71829134753c87539ca32bf'),
    ('core', 'function audit._surface()', '22bf36d92c7fd22918395afb775b96aca50744e8072374ae9bae0995bcec1998'),
    ('core', 'function audit._track_changes()', '408e5fd5a36314585a12543fa6b3d9410b10f7a6d4a1cc45cd1e45fdde2138e2'),
    ('core', 'function audit._untrackable(regclass)', '831cc03921684b6ec8f32095d158726d8cb3317b339f25f99d271a91c4233fbd'),
    ('core', 'function audit.digest()', '0c91c36f3eb45ac98c33b4a3891cb057a9dc31607bb2e86a8ff7a57732667324'),
    ('core', 'function audit.disable_strict_mode(regrole)', 'fdb2e62229d58b27208e3dcf9221fc464b36414b3795d9b921271ad8e534e3d5'),
    ('core', 'function audit.disable_tracking(regclass)', '4f783f536ad5e297d80661e08d0ec67ec83a9f4c72e8d22a43313c4d1069365b'),
    ('core', 'function audit.enable_strict_mode(regrole)', 'd0170bdff51bae7a9f07e6663d3794863ec3c683f5a841ab1d96bf1f52e8a840'),
    ('core', 'function audit.enable_tracking(regclass,text,text[])', 'bfab9d2d3730a1dcb2853778e7e4327550531385bb1ff30b1e28f3ebc44b26ae'),
    ('core', 'function audit.entry_hash(audit.audit_logs)', 'b89ba2f9cda32e5d496514094bfbc23f8603b75628dbe676fd71584717a5dd45'),
    ('core', 'function audit.history(text,uuid,integer,timestamp with time zone,uuid,text)', '3f764a5ae5ae056d4d297c5d507b883eb5d4e6f6890c60b82045ebc823c491d0'),
    ('core', 'function audit.page_cursor(timestamp with time zone,uuid)', '6405ce2404558ae790c47050e66c6e7f5bff35affc4a9403454cd18d61fd1f47'),
    ('core', 'function audit.pin_tenant(regrole,uuid)', 'c2aaa15acdd754b00d2eb5ee941f711b62acb833d5968b3609695836620bb8f3'),
    ('core', 'function audit.protection_problems()', '472f499d946824f1cde80d290912a26468ab6c48989d43406881e6f69bba7007'),
    ('core', 'function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', '994005e9ea2b69fa7fd5141a10d0978254fcce4731e3bcb201d1ece8ce53eb7f'),
    ('core', 'function audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', 'a1b2e22b88acc9a1e362ed30aa5735d8318a3daf166eb927f0496487ff65d261'),
    ('core', 'function audit.schema_version()', '7e7f8a5fcf308b29321d8c33d244be3f2fe821fff7898ff404d5dbc76e9af198'),
    ('core', 'function audit.seal()', '8881643341751dab3028a8fb2240d892d969a9c9388c8b3c0f452f68757108cd'),
    ('core', 'function audit.search(uuid,uuid,uuid,text,text,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone,uuid,text)', 'be495ae728c56ab430e72c8e282a2cd8f13d62245a338fb5bca2e6b84f818d00'),
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
    ('core', 'role audit_definer', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('core', 'role audit_owner', 'eadd931aa89cb64c2704f930a0e85cec2cece84af60109ae32f6bfd90a7bd4d1'),
    ('core', 'schema audit', 'e0571f5676b662e7d833f8a4c9da84fda22270e7fad58e39941ca3f7e93e797e'),
    ('guard', 'schema audit_guard', 'a35249eabc85cff693c43f67cf08016534483db34cce313c3603e340327649ec'),
    ('core', 'table audit.audit_logs', 'f9a5be72ce494ca560b642e68fb7a4f675a18010fc5504558102a926a531eb60'),
    ('core', 'table audit.blocks', 'a4f6be786e4f62c61a94caa7cbba371bf1dbabce8070885761db0e3ea5604749'),
    ('core', 'table audit.seal_lock', 'e2088cfc78c4fa9cee2a0a14cf4afd93e90009b4a24e3b3526df9c3da1b7739c'),
    ('core', 'table audit.strict_mode', '4f7d685a0aa37ec8497d898222a330c0265726d2edf9f333b5fe20bca6c50f24'),
    ('core', 'table audit.tenant_logins', 'a161660ee2d334f8068b670c3a21d70be356fec24bc1ce653be19aff3c29f68d'),
    ('core', 'view audit.audit_new', 'e3f8a1c95c6534d74bebb1a20249f1934b6e619b16f9adf9fb7581d6ba2d8059'),
    ('core', 'view audit.audit_old', '55a6c3a2cfd48faef211a1a7e8fe6718bf0706e0f4ff6f47de08c656a396c2be'),
    ('core', 'view audit.tracked_tables', '6055b0bcf5c152f70ff1853629e5de5df5894e547a43e9efeae09834a8a36bc1'),
    ('core', 'view audit.tracked_tables', '92404f380416fab3f27079d044377a088d272cfab9538ad5ab6c3ed9914c8020')
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

-- For monitoring (a check every minute, an alert on any row): the protection
-- checks of verify() without walking any chain, under a name that stays.
-- SECURITY INVOKER: it reads only the catalogs, which every login may read.
CREATE FUNCTION audit.protection_problems()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT p FROM audit._protection_problems() AS p
$$;

COMMENT ON FUNCTION audit.protection_problems() IS
    'What differs in the protection surface of the log from a fresh install of this version, one row per object; no row when all is in place. Walks no chain: for monitoring, by audit_reader.';

CREATE FUNCTION audit.verify(company_id uuid)
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
