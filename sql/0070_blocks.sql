-- Sealed blocks: one hash chain per company.
--
-- A block holds the entries of one company and one origin (the cluster they
-- were written on) whose transaction id lies in [xid_from, xid_to), and
-- commits to them by their Merkle root; it commits to the company's previous
-- block by that block's hash. For each origin, the ranges of a company's
-- blocks follow each other without gaps from 0 (docs/sealing.md). Blocks are
-- append-only, protected as the log is; only audit.seal() writes them.

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
    -- Added by 0012.portable-horizon: the origin of the entries the block
    -- holds (audit_logs.origin); [xid_from, xid_to) counts that cluster's
    -- transactions. NULL in blocks of form 1, and for entries older than 0012.
    origin       bigint,
    CONSTRAINT blocks_pkey PRIMARY KEY (company_id, block_no),
    CONSTRAINT blocks_range_is_ordered CHECK (xid_from < xid_to),
    CONSTRAINT blocks_one_hash_per_entry
        CHECK (pg_catalog.cardinality(entry_ids) = pg_catalog.cardinality(entry_hashes))
);

-- audit.seal() starts its search for unsealed entries at the newest xid_to.
CREATE INDEX blocks_xid_to_idx ON audit.blocks (xid_to);
-- Added by 0012.portable-horizon: ... of each origin.
CREATE INDEX blocks_origin_xid_to_idx ON audit.blocks (origin, xid_to);

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
COMMENT ON COLUMN audit.blocks.origin IS 'Origin (cluster system identifier) of the entries held; the range counts its transactions. NULL: entries older than 0012.portable-horizon.';
COMMENT ON INDEX audit.blocks_xid_to_idx IS 'Finds the newest sealed range.';
COMMENT ON INDEX audit.blocks_origin_xid_to_idx IS 'Finds the newest sealed range of each origin.';

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
