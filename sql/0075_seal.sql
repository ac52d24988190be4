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
-- Concurrent calls queue on the row of audit.seal_lock, and the second finds
-- only what the first left: no forked chain, no duplicate block (the primary
-- key on (company_id, block_no) would refuse one anyway).

-- The turn of audit.seal(): one row, which each seal updates before anything
-- else. Its row lock queues concurrent seals. Only audit_definer may update
-- it, and nobody else may lock it (LOCK TABLE and SELECT ... FOR UPDATE need
-- privileges no other role has), so no login can hold sealing back by
-- holding the lock, as any login could hold an advisory lock.
CREATE TABLE audit.seal_lock (
    seal_count bigint NOT NULL
);

CREATE UNIQUE INDEX seal_lock_one_row ON audit.seal_lock ((true));

INSERT INTO audit.seal_lock (seal_count) VALUES (0);

COMMENT ON TABLE audit.seal_lock IS
    'One row, updated by every audit.seal(): its row lock makes concurrent seals take turns.';
COMMENT ON COLUMN audit.seal_lock.seal_count IS 'How many seals have run (counted from 0009.trust-boundary).';
COMMENT ON INDEX audit.seal_lock_one_row IS 'Keeps the table to one row.';

CREATE FUNCTION audit.seal()
RETURNS TABLE (company_id uuid, block_no bigint, entry_count integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon   bigint;
    start_at  bigint;
    sealed    pg_catalog.timestamptz := pg_catalog.now();
    batch     pg_catalog.record;
    previous  pg_catalog.record;
    new_no    bigint;
    new_from  bigint;
    root      pg_catalog.bytea;
    zero_hash CONSTANT pg_catalog.bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
BEGIN
    -- Wait for our turn. Under REPEATABLE READ or SERIALIZABLE, a seal that
    -- committed after this transaction's snapshot was taken makes the update
    -- fail: its blocks are invisible here, so this call seals nothing rather
    -- than fork the chain, and says so.
    BEGIN
        UPDATE audit.seal_lock s SET seal_count = s.seal_count + 1;
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
Entries of transactions still open are left for a later call. Concurrent calls take turns; one
whose snapshot predates the last seal (REPEATABLE READ, SERIALIZABLE) seals nothing, with a NOTICE.$$;
