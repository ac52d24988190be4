-- The canonical form (docs/canonical-form.md): the bytes that
-- entries and blocks are hashed from. Built from the values alone, with
-- binary send functions and explicit UTF-8, so that no session setting
-- (DateStyle, TimeZone, extra_float_digits, client encoding) changes them.
--
-- The three small helpers have no SET clause so that PostgreSQL inlines them
-- into their callers (a SET clause forbids it); they qualify every name and
-- operator, and their callers pin search_path = pg_catalog, pg_temp.

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
-- An entry without context keeps the version 1 bytes, so that entries sealed
-- before contexts existed still verify; one with context is version 2, which
-- adds it. Emptying or adding a context therefore changes the hash as well.
-- An entry with an origin (0012.portable-horizon) is version 3: the context
-- always, then the origin, so that moving an entry to another origin's
-- ranges changes its hash too.
CREATE FUNCTION audit.entry_hash(entry audit.audit_logs)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
SELECT pg_catalog.sha256(
    CASE WHEN entry.origin IS NOT NULL THEN '\x03'::pg_catalog.bytea
         WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
         THEN '\x01'::pg_catalog.bytea ELSE '\x02'::pg_catalog.bytea END
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
    OPERATOR(pg_catalog.||) CASE WHEN entry.context OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                                      AND entry.origin IS NULL
                                 THEN ''::pg_catalog.bytea
                                 ELSE audit._str_bytes(entry.context::pg_catalog.text) END
    OPERATOR(pg_catalog.||) CASE WHEN entry.origin IS NULL THEN ''::pg_catalog.bytea
                                 ELSE pg_catalog.int8send(entry.origin) END
)
$$;

COMMENT ON FUNCTION audit.entry_hash(audit.audit_logs) IS
    'SHA-256 of an entry in canonical form (docs/canonical-form.md): version 1 without context, version 2 with, version 3 with an origin.';

-- RFC 6962's Merkle tree, built level by level (an odd last node goes up
-- unchanged, which yields the same tree as RFC 6962's recursive split). One
-- set-based statement per level: a loop per node costs several times more.
CREATE FUNCTION audit._merkle_root(leaves bytea[])
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- Its bytea literals ('\x01') read as written whatever the caller's standard_conforming_strings.
SET standard_conforming_strings = on
AS $$
DECLARE
    level pg_catalog.bytea[];
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
SET search_path = pg_catalog, pg_temp
-- Its bytea literals ('\x01') read as written whatever the caller's standard_conforming_strings.
SET standard_conforming_strings = on
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

-- Block form 2 (0012.portable-horizon): form 1's header, then the origin
-- whose transactions the range counts (0 for none, else 1 and the origin).
CREATE FUNCTION audit._block_hash_v2(
    company_id  uuid,
    block_no    bigint,
    xid_from    bigint,
    xid_to      bigint,
    entry_count integer,
    merkle_root bytea,
    prev_hash   bytea,
    sealed_at   timestamptz,
    origin      bigint
)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- Its bytea literals ('\x01') read as written whatever the caller's standard_conforming_strings.
SET standard_conforming_strings = on
AS $$
SELECT pg_catalog.sha256(
    '\x02'::pg_catalog.bytea
    OPERATOR(pg_catalog.||) pg_catalog.uuid_send(company_id)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(block_no)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_from)
    OPERATOR(pg_catalog.||) pg_catalog.int8send(xid_to)
    OPERATOR(pg_catalog.||) pg_catalog.int4send(entry_count)
    OPERATOR(pg_catalog.||) merkle_root
    OPERATOR(pg_catalog.||) prev_hash
    OPERATOR(pg_catalog.||) pg_catalog.int8send(audit._micros(sealed_at))
    OPERATOR(pg_catalog.||) CASE WHEN origin IS NULL THEN '\x00'::pg_catalog.bytea
                                 ELSE '\x01'::pg_catalog.bytea OPERATOR(pg_catalog.||) pg_catalog.int8send(origin) END
)
$$;

COMMENT ON FUNCTION audit._block_hash_v2(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz, bigint) IS
    'SHA-256 of a block header in canonical form version 2 (docs/canonical-form.md): version 1 and the origin.';
