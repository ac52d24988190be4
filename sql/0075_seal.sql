-- audit.seal(): seals the finished, unsealed entries of every company into
-- new blocks of that company's chain. docs/sealing.md gives the design.
--
-- Which entries are final? Each entry carries the transaction id of its
-- writer (txid) and the cluster that counted it (origin, its system
-- identifier). On this cluster, every transaction whose id is below the
-- xmin of the current snapshot has ended: it committed (its entries are
-- visible now) or rolled back (they never will be), and any transaction
-- still to write gets a larger id. So this cluster's entries with txid below
-- that horizon form a set that can no longer change. Entries of any other
-- origin were written on a cluster this one was restored, replicated or
-- moved from: they are all final, and the first seal here takes every one
-- not sealed yet. For each origin, a company's blocks cover the ranges of
-- transaction ids from 0 without gaps, so no entry is skipped and none is
-- sealed twice, whatever the clusters' counters. Writers take no lock of
-- ours and never wait. Concurrent calls queue on the row of
-- audit.seal_lock, and the second finds only what the first left.
--
-- A logical subscriber of the log does not seal: its publisher's blocks
-- arrive by replication, and entries of the publisher's transactions still
-- open would arrive after a local seal had closed their range.

-- The turn of audit.seal(): one row, which each seal updates before anything
-- else. Its row lock queues concurrent seals. Only audit_definer may update
-- it, and nobody else may lock it (LOCK TABLE and SELECT ... FOR UPDATE need
-- privileges no other role has), so no login can hold sealing back by
-- holding the lock, as any login could hold an advisory lock.
CREATE TABLE audit.seal_lock (
    seal_count bigint NOT NULL,
    -- Added by 0012.portable-horizon: the cluster the last seal ran on. While
    -- it is this one, no entry of another origin is left to seal.
    origin     bigint
);

CREATE UNIQUE INDEX seal_lock_one_row ON audit.seal_lock ((true));

INSERT INTO audit.seal_lock (seal_count) VALUES (0);

-- A publication FOR ALL TABLES (as blue/green tooling makes) publishes its
-- updates: PostgreSQL refuses an UPDATE of a published table without a
-- replica identity, and every seal updates this one.
ALTER TABLE audit.seal_lock REPLICA IDENTITY FULL;

COMMENT ON TABLE audit.seal_lock IS
    'One row, updated by every audit.seal(): its row lock makes concurrent seals take turns.';
COMMENT ON COLUMN audit.seal_lock.seal_count IS 'How many seals have run (counted from 0009.trust-boundary).';
COMMENT ON COLUMN audit.seal_lock.origin IS 'System identifier of the cluster the last seal ran on (from 0012.portable-horizon).';
COMMENT ON INDEX audit.seal_lock_one_row IS 'Keeps the table to one row.';

CREATE FUNCTION audit.seal()
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
