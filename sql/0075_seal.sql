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
