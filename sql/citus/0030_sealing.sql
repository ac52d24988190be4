-- Sealing on Citus: each worker seals the companies it holds, at its own
-- horizon, with its own transaction counter (docs/sealing.md, "Citus").
--
-- audit.seal() cannot run as it does on one PostgreSQL: on the coordinator,
-- its reads and inserts would reach the workers through connections as
-- audit_definer, a role no one may log in as; on a worker, a query of
-- audit.audit_logs is a distributed query over every node's shards, and its
-- horizon says nothing of the other nodes' counters; and its whole-row call
-- audit.entry_hash(a) would meet a shard's row type (audit_logs_102008)
-- where the function takes audit.audit_logs. So:
--
-- * audit.seal_here(), on a worker, seals the entries of the shards placed
--   on that worker, naming each shard (its audit_logs and its co-located
--   blocks) and casting each row to audit.audit_logs. The horizon is the
--   worker's: the xmin of its snapshot, below which every transaction of
--   the worker has ended, prepared ones (Citus's two-phase commits)
--   included. Every company of the worker is sealed at that one horizon,
--   as audit.seal() seals every company at once, so that for each origin
--   the newest xid_to of any company still says "every entry of this origin
--   below it is sealed" (what both verifiers check).
-- * Entries of other origins (a shard moved here from another worker) are
--   final, and are taken per company and origin from where that company's
--   blocks of that origin end: companies arrive from the same worker at
--   different times, each with its blocks.
-- * audit.seal() on the coordinator runs audit.seal_here() on every worker
--   (run_command_on_workers, as the calling login), each in a transaction
--   of its own, and returns what each sealed.
--
-- Seals of one worker take turns on a transaction-level advisory lock of
-- that worker. (On one PostgreSQL the turn is a row of audit.seal_lock,
-- which only audit_definer may lock: here any login allowed to connect to a
-- worker could hold the advisory lock and so delay sealing there, never
-- change what is sealed.)

CREATE FUNCTION audit.seal_here()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The hash functions it calls hold bytea literals, read as written whatever the caller's setting.
SET standard_conforming_strings = on
SET jit = off
-- It inserts into the blocks shards themselves, which Citus refuses unless told.
SET citus.enable_manual_changes_to_shards = on
AS $$
DECLARE
    here       pg_catalog.int8 := (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s);
    horizon    pg_catalog.int8;
    start_here pg_catalog.int8 := 0;
    sealed     pg_catalog.timestamptz := pg_catalog.now();
    local_logs   pg_catalog.text[];
    local_blocks pg_catalog.text[];
    shard_no     pg_catalog.int4;
    batch      pg_catalog.record;
    previous   pg_catalog.record;
    sealed_to  pg_catalog.int8;
    new_no     pg_catalog.int8;
    new_from   pg_catalog.int8;
    root       pg_catalog.bytea;
    zero_hash  CONSTANT pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    others_final pg_catalog.bool;
BEGIN
    IF pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'audit.seal_here(): run it on a worker; on the coordinator, audit.seal() runs it on every worker'
            USING ERRCODE = 'AU008';
    END IF;
    -- 'audit.seal' as two int4 keys: one turn per worker.
    PERFORM pg_catalog.pg_advisory_xact_lock(1635083369, 1936024940);
    horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8;
    others_final := NOT EXISTS (SELECT FROM pg_catalog.pg_prepared_xacts);

    -- This worker's shards of the log, each with its co-located shard of blocks, read once.
    SELECT COALESCE(pg_catalog.array_agg(pg_catalog.format('audit.%I', 'audit_logs_' OPERATOR(pg_catalog.||) l.shardid)
                                         ORDER BY l.shardid), '{}'),
           COALESCE(pg_catalog.array_agg(pg_catalog.format('audit.%I', 'blocks_' OPERATOR(pg_catalog.||) b.shardid)
                                         ORDER BY l.shardid), '{}')
    INTO local_logs, local_blocks
    FROM pg_catalog.pg_dist_shard l
    JOIN pg_catalog.pg_dist_shard b ON b.logicalrelid = 'audit.blocks'::pg_catalog.regclass
                                   AND b.shardminvalue OPERATOR(pg_catalog.=) l.shardminvalue
    JOIN pg_catalog.pg_dist_placement lp ON lp.shardid = l.shardid
    JOIN pg_catalog.pg_dist_placement bp ON bp.shardid = b.shardid AND bp.groupid = lp.groupid
    WHERE l.logicalrelid = 'audit.audit_logs'::pg_catalog.regclass
      AND lp.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g);

    FOR shard_no IN 1 .. pg_catalog.cardinality(local_blocks) LOOP
        EXECUTE pg_catalog.format('SELECT pg_catalog.max(b.xid_to) FROM %s b WHERE b.origin = $1', local_blocks[shard_no])
            INTO sealed_to USING here;
        start_here := GREATEST(start_here, COALESCE(sealed_to, 0));
    END LOOP;

    FOR shard_no IN 1 .. pg_catalog.cardinality(local_logs) LOOP
        FOR batch IN EXECUTE pg_catalog.format($query$
            SELECT e.company_id, e.origin, pg_catalog.max(e.range_end) AS range_end,
                   pg_catalog.array_agg(e.id ORDER BY e.id) AS ids,
                   pg_catalog.array_agg(e.hash ORDER BY e.id) AS hashes
            FROM (-- This worker's finished entries.
                  SELECT a.company_id, a.origin, a.id,
                         audit.entry_hash(ROW(a.*)::audit.audit_logs) AS hash, $2 AS range_end
                  FROM %1$s a
                  WHERE a.origin = $1 AND a.txid >= $3 AND a.txid < $2
                  UNION ALL
                  -- Every entry of another origin (moved here) not sealed yet, from where the
                  -- company's blocks of that origin end.
                  SELECT x.company_id, x.origin, x.id, audit.entry_hash(ROW(x.*)::audit.audit_logs),
                         pg_catalog.max(x.txid) OVER (PARTITION BY x.company_id, x.origin) + 1
                  FROM %1$s x
                  WHERE $4 AND x.origin <> $1
                    AND x.txid >= COALESCE((SELECT pg_catalog.max(b.xid_to) FROM %2$s b
                                            WHERE b.company_id = x.company_id AND b.origin = x.origin), 0)) e
            GROUP BY e.company_id, e.origin
            -- Other origins first: a company's chain goes from the old node to this one.
            ORDER BY e.origin = $1, e.origin, e.company_id
            $query$, local_logs[shard_no], local_blocks[shard_no]) USING here, horizon, start_here, others_final
        LOOP
            EXECUTE pg_catalog.format('SELECT b.block_no, b.block_hash, b.origin, b.xid_to FROM %s b'
                                      ' WHERE b.company_id = $1 ORDER BY b.block_no DESC LIMIT 1', local_blocks[shard_no])
                INTO previous USING batch.company_id;
            IF previous.block_no IS NOT NULL AND previous.origin IS NOT DISTINCT FROM batch.origin THEN
                new_from := previous.xid_to;
            ELSE
                EXECUTE pg_catalog.format('SELECT COALESCE(pg_catalog.max(b.xid_to), 0) FROM %s b'
                                          ' WHERE b.company_id = $1 AND b.origin = $2', local_blocks[shard_no])
                    INTO new_from USING batch.company_id, batch.origin;
            END IF;
            new_no := COALESCE(previous.block_no, 0) + 1;
            root := audit._merkle_root(batch.hashes);
            EXECUTE pg_catalog.format(
                'INSERT INTO %s (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes, merkle_root,'
                ' prev_hash, block_hash, sealed_at, format, origin)'
                ' VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 2, $11)', local_blocks[shard_no])
            USING batch.company_id, new_no, new_from, batch.range_end, batch.ids, batch.hashes, root,
                  COALESCE(previous.block_hash, zero_hash),
                  audit._block_hash_v2(batch.company_id, new_no, new_from, batch.range_end,
                                       pg_catalog.cardinality(batch.ids), root,
                                       COALESCE(previous.block_hash, zero_hash), sealed, batch.origin),
                  sealed, batch.origin;
            company_id := batch.company_id;
            block_no := new_no;
            entry_count := pg_catalog.cardinality(batch.ids);
            RETURN NEXT;
        END LOOP;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION audit.seal_here() IS
$$Citus, on a worker: seals every finished, unsealed entry of the shards placed on this worker into
new blocks of their companies' chains, at this worker's horizon; returns one row per block made.
audit.seal() on the coordinator runs it on every worker.$$;

-- The coordinator's audit.seal(): the same call as on one PostgreSQL, now
-- running audit.seal_here() on every worker as the calling login, which
-- needs audit_admin there (Citus propagates the grant). SECURITY INVOKER:
-- run_command_on_workers() connects as the current role, and audit_definer
-- may not log in.
CREATE OR REPLACE FUNCTION audit.seal()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_catalog.record;
BEGIN
    FOR node IN
        SELECT w.nodename, w.nodeport, w.success, w.result
        FROM pg_catalog.run_command_on_workers(
            $command$SELECT COALESCE(pg_catalog.json_agg(s), '[]') FROM audit.seal_here() s$command$) w
        ORDER BY w.nodename, w.nodeport
    LOOP
        IF NOT node.success THEN
            RAISE EXCEPTION 'audit.seal(): sealing on worker %:% failed: %', node.nodename, node.nodeport, node.result
                USING ERRCODE = 'AU008';
        END IF;
        RETURN QUERY
        SELECT r.company_id, r.block_no, r.entry_count
        FROM pg_catalog.json_to_recordset(node.result::pg_catalog.json)
             AS r(company_id pg_catalog.uuid, block_no pg_catalog.int8, entry_count pg_catalog.int4);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION audit.seal() IS
$$Citus: seals every finished, unsealed entry on every worker (audit.seal_here() there, each worker
at its own horizon, in a transaction of its own); returns one row per block made. Run it on a
schedule, as a login granted audit_admin.$$;

ALTER FUNCTION audit.seal_here() OWNER TO audit_definer;
REVOKE ALL ON FUNCTION audit.seal_here() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.seal_here() TO audit_admin;
SELECT pg_catalog.create_distributed_function('audit.seal_here()'::pg_catalog.regprocedure);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
