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
-- What verify does not do here: compare the protection surface. The expected
-- surface it holds (audit._protection_problems()) is a plain install's, and a
-- worker's catalog is not the coordinator's; `audit-py verify` compares the
-- coordinator's with audit_py/surface-citus.json. Its report says so.

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
        'Company %s: %s blocks and %s sealed entries verified; %s entries not sealed yet; protections not checked here (Citus: audit-py verify compares them).',
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
verify), a report in words, and for a failure the first broken block and entry. The protection surface
is not compared here: audit-py verify compares the coordinator's. STRICT, one row, not a set (Citus
crashes on a set-returning call of a NULL company): verify(NULL) is a row of NULLs.$$;

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
ALTER FUNCTION audit.digest(uuid) OWNER TO audit_definer;
ALTER FUNCTION audit._digest_here() OWNER TO audit_definer;
REVOKE ALL ON FUNCTION audit._local_shards(uuid, text), audit.digest(uuid),
    audit._digest_here() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._local_shards(uuid, text) TO audit_definer;
GRANT EXECUTE ON FUNCTION audit.digest(uuid), audit._digest_here() TO audit_reader;
SELECT pg_catalog.create_distributed_function('audit._local_shards(uuid, text)'::pg_catalog.regprocedure);
SELECT pg_catalog.create_distributed_function('audit._digest_here()'::pg_catalog.regprocedure);
SELECT pg_catalog.create_distributed_function('audit.verify(uuid)'::pg_catalog.regprocedure, 'company_id',
                                              colocate_with => 'audit.audit_logs', force_delegation => true);
SELECT pg_catalog.create_distributed_function('audit.digest(uuid)'::pg_catalog.regprocedure, 'company_id',
                                              colocate_with => 'audit.audit_logs', force_delegation => true);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
