-- audit.digest(): the head of every company's chain, small enough to keep
-- elsewhere (a file, object storage under a retention lock). A chain that
-- still extends a digest taken earlier was not rewritten since, even by a
-- superuser who kept it consistent in itself. `audit-py digest` signs it.

CREATE FUNCTION audit.digest()
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on
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
