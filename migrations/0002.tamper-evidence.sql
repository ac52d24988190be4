-- Tamper evidence: each entry records its transaction id; audit.seal()
-- seals finished entries into one hash chain per company (audit.blocks);
-- audit.verify() and audit.digest() check and export the chains.
-- docs/canonical-form.md specifies what is hashed.
-- depends: 0001.audit-foundation

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

-- Nullable and without a default, so that adding it rewrites nothing: the
-- entries written before this migration keep NULL, which sealing counts as
-- transaction 0. The stamp trigger sets it on every new entry.
ALTER TABLE audit.audit_logs ADD COLUMN txid bigint;
COMMENT ON COLUMN audit.audit_logs.txid IS
    'Id of the writing transaction (pg_current_xact_id()), set by the database on insert: sealing uses it to know when no more entries can appear in a range. NULL for entries written before sealing was installed; they count as transaction 0.';

CREATE OR REPLACE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    NEW.txid := pg_catalog.txid_current();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION audit._stamp_entry() IS
    'Trigger function: sets id, created_at and txid of a new entry, whatever the insert supplied.';
COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id, created_at and txid of every new entry (ENABLE ALWAYS).';

-- ---- 0060_canonical_form.sql ----

-- The canonical form, version 1 (docs/canonical-form.md): the bytes that
-- entries and blocks are hashed from. Built from the values alone, with
-- binary send functions and explicit UTF-8, so that no session setting
-- (DateStyle, TimeZone, extra_float_digits, client encoding) changes them.
--
-- The three small helpers have no SET clause so that PostgreSQL inlines them
-- into their callers (a SET clause forbids it); they qualify every name and
-- operator, and their callers pin search_path = ''.

CREATE FUNCTION audit._str_bytes(value text)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(value, 'UTF8')))
       OPERATOR(pg_catalog.||) pg_catalog.convert_to(value, 'UTF8')
$$;

COMMENT ON FUNCTION audit._str_bytes(text) IS
    'Canonical form: a string as its UTF-8 byte length (4 bytes, big-endian) and its UTF-8 bytes.';

CREATE FUNCTION audit._opt_uuid_bytes(value uuid)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
SELECT CASE WHEN value IS NULL THEN '\x00'::pg_catalog.bytea
            ELSE '\x01'::pg_catalog.bytea OPERATOR(pg_catalog.||) pg_catalog.uuid_send(value) END
$$;

COMMENT ON FUNCTION audit._opt_uuid_bytes(uuid) IS
    'Canonical form: a nullable uuid as one byte 0 (NULL) or 1 followed by its 16 bytes.';

CREATE FUNCTION audit._micros(value timestamptz)
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT (pg_catalog.extract('epoch', value) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8
$$;

COMMENT ON FUNCTION audit._micros(timestamptz) IS
    'Canonical form: an instant as microseconds since 1970-01-01 00:00:00 UTC, whatever the TimeZone.';

-- No SET clause either: audit.seal() and audit.verify() hash every entry
-- they read, and only an inlined function costs nothing per row.
CREATE FUNCTION audit.entry_hash(entry audit.audit_logs)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.sha256(
    '\x01'::pg_catalog.bytea
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
)
$$;

COMMENT ON FUNCTION audit.entry_hash(audit.audit_logs) IS
    'SHA-256 of an entry in canonical form version 1 (docs/canonical-form.md).';

-- RFC 6962's Merkle tree, built level by level (an odd last node goes up
-- unchanged, which yields the same tree as RFC 6962's recursive split). One
-- set-based statement per level: a loop per node costs several times more.
CREATE FUNCTION audit._merkle_root(leaves bytea[])
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = ''
AS $$
DECLARE
    level bytea[];
BEGIN
    IF pg_catalog.cardinality(leaves) = 0 THEN
        RETURN pg_catalog.sha256(''::pg_catalog.bytea);
    END IF;
    SELECT pg_catalog.array_agg(pg_catalog.sha256('\x00'::pg_catalog.bytea OPERATOR(pg_catalog.||) l.leaf) ORDER BY l.n)
    INTO level
    FROM pg_catalog.unnest(leaves) WITH ORDINALITY AS l(leaf, n);
    -- Pairs come from lead() over the unnested level: subscripting the array
    -- in the query would copy it for every node.
    WHILE pg_catalog.cardinality(level) > 1 LOOP
        SELECT pg_catalog.array_agg(
                   CASE WHEN p.right_node IS NULL THEN p.left_node
                        ELSE pg_catalog.sha256('\x01'::pg_catalog.bytea OPERATOR(pg_catalog.||) p.left_node
                                               OPERATOR(pg_catalog.||) p.right_node) END
                   ORDER BY p.n)
        INTO level
        FROM (SELECT x.n, x.node AS left_node, pg_catalog.lead(x.node) OVER (ORDER BY x.n) AS right_node
              FROM pg_catalog.unnest(level) WITH ORDINALITY AS x(node, n)) AS p
        WHERE p.n OPERATOR(pg_catalog.%) 2 OPERATOR(pg_catalog.=) 1;
    END LOOP;
    RETURN level[1];
END;
$$;

COMMENT ON FUNCTION audit._merkle_root(bytea[]) IS
    'Root of the RFC 6962 Merkle tree over the given leaf hashes, in their order.';

CREATE FUNCTION audit._block_hash(
    company_id  uuid,
    block_no    bigint,
    xid_from    bigint,
    xid_to      bigint,
    entry_count integer,
    merkle_root bytea,
    prev_hash   bytea,
    sealed_at   timestamptz
)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = ''
AS $$
SELECT pg_catalog.sha256(
    '\x01'::pg_catalog.bytea
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(company_id)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(block_no)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_from)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_to)
    OPERATOR(pg_catalog.||) pg_catalog.int4send(entry_count)
    OPERATOR(pg_catalog.||) merkle_root
    OPERATOR(pg_catalog.||) prev_hash
    OPERATOR(pg_catalog.||) pg_catalog.int8send(audit._micros(sealed_at))
)
$$;

COMMENT ON FUNCTION audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz) IS
    'SHA-256 of a block header in canonical form version 1 (docs/canonical-form.md).';

-- ---- 0070_blocks.sql ----

-- Sealed blocks: one hash chain per company.
--
-- A block holds the entries of one company whose transaction id lies in
-- [xid_from, xid_to), and commits to them by their Merkle root; it commits to
-- the company's previous block by that block's hash. The ranges of a company
-- follow each other without gaps from 0. Blocks are append-only, protected as
-- the log is; only audit.seal() writes them.

CREATE TABLE audit.blocks (
    company_id   uuid        NOT NULL,
    block_no     bigint      NOT NULL,
    xid_from     bigint      NOT NULL,
    xid_to       bigint      NOT NULL,
    entry_ids    uuid[]      NOT NULL,
    entry_hashes bytea[]     NOT NULL,
    merkle_root  bytea       NOT NULL,
    prev_hash    bytea       NOT NULL,
    block_hash   bytea       NOT NULL,
    sealed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    format       bigint      NOT NULL,
    CONSTRAINT blocks_pkey PRIMARY KEY (company_id, block_no),
    CONSTRAINT blocks_range_is_ordered CHECK (xid_from < xid_to),
    CONSTRAINT blocks_one_hash_per_entry
        CHECK (pg_catalog.cardinality(entry_ids) = pg_catalog.cardinality(entry_hashes))
);

-- audit.seal() starts its search for unsealed entries at the newest xid_to.
CREATE INDEX blocks_xid_to_idx ON audit.blocks (xid_to);

COMMENT ON TABLE audit.blocks IS
    'Hash chain of sealed entries, one per company. Append-only: UPDATE, DELETE and TRUNCATE are refused for every role.';
COMMENT ON COLUMN audit.blocks.company_id IS 'The company whose chain this block belongs to.';
COMMENT ON COLUMN audit.blocks.block_no IS 'Position in the company''s chain, from 1.';
COMMENT ON COLUMN audit.blocks.xid_from IS 'The block holds the company''s entries with coalesce(txid, 0) >= xid_from ...';
COMMENT ON COLUMN audit.blocks.xid_to IS '... and < xid_to; the next block starts here.';
COMMENT ON COLUMN audit.blocks.entry_ids IS 'Ids of the entries sealed, in id order (to name an entry that no longer matches).';
COMMENT ON COLUMN audit.blocks.entry_hashes IS 'audit.entry_hash() of each entry, in the order of entry_ids: the Merkle leaves.';
COMMENT ON COLUMN audit.blocks.merkle_root IS 'RFC 6962 Merkle root over entry_hashes.';
COMMENT ON COLUMN audit.blocks.prev_hash IS 'block_hash of the previous block of the company; 32 zero bytes for block 1.';
COMMENT ON COLUMN audit.blocks.block_hash IS 'SHA-256 of the block header in canonical form (docs/canonical-form.md).';
COMMENT ON COLUMN audit.blocks.sealed_at IS 'When the block was sealed.';
COMMENT ON COLUMN audit.blocks.format IS 'Version of the canonical form the hashes were computed with.';
COMMENT ON INDEX audit.blocks_xid_to_idx IS 'Finds the newest sealed range.';

CREATE TRIGGER blocks_refuse_update
    BEFORE UPDATE ON audit.blocks
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.blocks ENABLE ALWAYS TRIGGER blocks_refuse_update;

CREATE TRIGGER blocks_refuse_delete
    BEFORE DELETE ON audit.blocks
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.blocks ENABLE ALWAYS TRIGGER blocks_refuse_delete;

CREATE TRIGGER blocks_refuse_truncate
    BEFORE TRUNCATE ON audit.blocks
    FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.blocks ENABLE ALWAYS TRIGGER blocks_refuse_truncate;

COMMENT ON TRIGGER blocks_refuse_update ON audit.blocks IS
    'Refuses UPDATE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER blocks_refuse_delete ON audit.blocks IS
    'Refuses DELETE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER blocks_refuse_truncate ON audit.blocks IS
    'Refuses TRUNCATE for every role, replication sessions included (ENABLE ALWAYS).';

-- ---- 0075_seal.sql ----

-- audit.seal(): seals the finished, unsealed entries of every company into a
-- new block of that company's chain.
--
-- Which entries are final? Every transaction whose id is below the xmin of
-- the current snapshot has ended: it committed (its entries are visible now)
-- or rolled back (they never will be), and any transaction still to write
-- gets a larger id. So the entries with txid below that horizon form a set
-- that can no longer change, while an entry of a transaction that began
-- before this seal and commits after it has a txid at or above the horizon:
-- a later block takes it. Writers take no lock of ours and never wait.
-- Concurrent calls queue on an advisory lock, and the second finds only what
-- the first left: no forked chain, no duplicate block (the primary key on
-- (company_id, block_no) would refuse one anyway).

CREATE FUNCTION audit.seal()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    horizon   bigint;
    start_at  bigint;
    sealed    timestamptz := pg_catalog.now();
    batch     record;
    previous  record;
    new_no    bigint;
    new_from  bigint;
    root      bytea;
    zero_hash CONSTANT bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
BEGIN
    -- The key is the first 8 bytes of md5('audit.seal'): ours alone.
    PERFORM pg_catalog.pg_advisory_xact_lock(6467206942688935610);
    horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8;
    -- Every entry below the newest sealed xid_to is sealed, for every company.
    SELECT COALESCE(pg_catalog.max(b.xid_to), 0) INTO start_at FROM audit.blocks b;

    FOR batch IN
        SELECT e.company_id,
               pg_catalog.array_agg(e.id ORDER BY e.id) AS ids,
               pg_catalog.array_agg(e.hash ORDER BY e.id) AS hashes
        -- Two branches rather than one OR, so that each can use the BRIN index.
        FROM (SELECT a.company_id, a.id, audit.entry_hash(a) AS hash
              FROM audit.audit_logs a WHERE a.txid >= start_at AND a.txid < horizon
              UNION ALL
              SELECT a.company_id, a.id, audit.entry_hash(a)
              FROM audit.audit_logs a WHERE a.txid IS NULL AND start_at = 0) AS e
        GROUP BY e.company_id
        ORDER BY e.company_id
    LOOP
        SELECT b.block_no, b.xid_to, b.block_hash INTO previous
        FROM audit.blocks b
        WHERE b.company_id = batch.company_id
        ORDER BY b.block_no DESC
        LIMIT 1;
        new_no := COALESCE(previous.block_no, 0) + 1;
        new_from := COALESCE(previous.xid_to, 0);
        root := audit._merkle_root(batch.hashes);
        INSERT INTO audit.blocks (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes,
                                  merkle_root, prev_hash, block_hash, sealed_at, format)
        VALUES (batch.company_id, new_no, new_from, horizon, batch.ids, batch.hashes, root,
                COALESCE(previous.block_hash, zero_hash),
                audit._block_hash(batch.company_id, new_no, new_from, horizon,
                                  pg_catalog.cardinality(batch.ids), root,
                                  COALESCE(previous.block_hash, zero_hash), sealed),
                sealed, 1);
        company_id := batch.company_id;
        block_no := new_no;
        entry_count := pg_catalog.cardinality(batch.ids);
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION audit.seal() IS
$$Seals every finished, unsealed entry into a new block of its company's chain; returns one row per
block made. Run it on a schedule: pg_cron, cron with psql, or `audit-py seal --watch SECONDS`.
Entries of transactions still open are left for a later call.$$;

-- ---- 0080_verify.sql ----

-- audit.verify(company_id): checks one company's chain against its entries,
-- and that the protections are in place, reading no other company's entries.
--
-- It recomputes, block by block: the numbering, the contiguity of the
-- transaction ranges, the link to the previous block, each entry's hash, the
-- Merkle root and the block hash. It stops at the first broken block and
-- names the first entry that no longer matches. `audit-py verify` makes the
-- same checks in Python, computing every hash itself; that one does not have
-- to trust this function.

CREATE FUNCTION audit._protection_problems()
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
    ('audit._entry_problem(uuid,text,text,uuid,jsonb)', '2b192244cf0754dbb144ccc5ef2550125f81f636440f2aa50302017c26c6e8a7'),
    ('audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)', 'ed08641e29ef7974f6a190af4bda8d4b9ebb074cf732c274c00b72913db76b45'),
    ('audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])', '5b94994eed568644d5e6ae084577da9ce493665affc9672f82d02d00509d6936'),
    ('audit._str_bytes(text)', '3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518'),
    ('audit._opt_uuid_bytes(uuid)', '80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de'),
    ('audit._micros(timestamp with time zone)', '205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715'),
    ('audit.entry_hash(audit.audit_logs)', 'efe228ea8f9878de619f0977cb4d6ed854526aea572caf63b048c3c0cdcd6e79'),
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

COMMENT ON FUNCTION audit._protection_problems() IS
    'What is wrong with the protections of the log (triggers missing, disabled or redefined, rules added, functions dropped or replaced); no row when all is in place.';

CREATE FUNCTION audit.verify(company_id uuid)
RETURNS TABLE (ok boolean, report text, block_no bigint, entry_id uuid)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    problem     text;
    chain       audit.blocks[];
    blk         audit.blocks;
    broken_at   integer;
    broken_why  text;
    prev        bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    froms       bigint[] := '{}';
    sealed_to   bigint := 0;
    entries     bigint := 0;
    unsealed    bigint;
    orphan      uuid;
    bucket      record;
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
$$Verifies one company's chain against its entries, and the protections of the log. Returns one row:
ok, a report in words, and for a failure the first broken block and entry. Reads no other company's
entries.$$;

-- ---- 0085_digest.sql ----

-- audit.digest(): the head of every company's chain, small enough to keep
-- elsewhere (a file, object storage under a retention lock). A chain that
-- still extends a digest taken earlier was not rewritten since, even by a
-- superuser who kept it consistent in itself. `audit-py digest` signs it.

CREATE FUNCTION audit.digest()
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
SELECT pg_catalog.jsonb_build_object(
    'format', 1,
    'database', pg_catalog.current_database(),
    'taken_at', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'chains', COALESCE(pg_catalog.jsonb_object_agg(head.company_id, pg_catalog.jsonb_build_object(
        'block_no', head.block_no,
        'block_hash', pg_catalog.encode(head.block_hash, 'hex'),
        'xid_to', head.xid_to)), '{}'::pg_catalog.jsonb))
FROM (
    SELECT DISTINCT ON (b.company_id) b.company_id, b.block_no, b.block_hash, b.xid_to
    FROM audit.blocks b
    ORDER BY b.company_id, b.block_no DESC
) AS head
$$;

COMMENT ON FUNCTION audit.digest() IS
    'The newest block of every company''s chain, as JSON: {format, database, taken_at, chains: {company_id: {block_no, block_hash, xid_to}}}.';

-- ---- privileges (0090_grants.sql) ----

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON audit.blocks FROM PUBLIC;
GRANT SELECT ON audit.blocks TO audit_reader;
GRANT EXECUTE ON FUNCTION audit.verify(uuid), audit.digest() TO audit_reader;
