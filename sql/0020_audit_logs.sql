-- The log itself: one row per critical action.

-- The entry's identity, time, transaction and cluster (id, created_at, txid,
-- origin) are the database's. For audit_definer, the role every recording
-- function runs as, they are these defaults: it may insert every column but
-- these four (0090_grants.sql), so no code running as it can choose them.
-- Every other role's insert is stamped by a trigger (0030_immutability.sql)
-- with the same values. Defaults cost half what the trigger does
-- (0014.cheaper-entries: 5 µs of backend CPU an entry against 10,
-- bench/stamp.py).
--
-- The id is time-ordered (RFC 9562 version 7, from 0014.cheaper-entries):
-- 48 bits of Unix milliseconds, the version, 12 bits of the sub-millisecond
-- fraction (the RFC's "increased clock precision"), the variant and 62
-- random bits from gen_random_uuid(). The primary key then grows at its
-- right edge, as the log does, rather than on a random page of an index
-- that outgrows memory as the log grows. It says when the entry was
-- written, which created_at says anyway. clock_timestamp() rather than
-- now(): the entries of one transaction follow each other. The clock is
-- read once: its microseconds times 4.096 are the milliseconds followed by
-- the 12-bit fraction, into which the version's 4 bits are inserted (an
-- overlay of length 0) before the 64 bits cover the random uuid's first 8
-- bytes.
-- A plain SQL function without a SET clause, so that PostgreSQL inlines it
-- into the default and the trigger (a SET clause would cost a call per
-- entry); it names only qualified pg_catalog functions, operators and types,
-- so that the caller's search_path resolves nothing in it.
CREATE FUNCTION audit._new_entry_id()
RETURNS uuid
LANGUAGE sql
VOLATILE
AS $$
SELECT pg_catalog.encode(pg_catalog.overlay(
    pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
    pg_catalog.int8send(pg_catalog.overlay(
        pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
                         OPERATOR(pg_catalog.*) 4096000)::pg_catalog.int8::pg_catalog.bit(60),
        B'0111', 49, 0)::pg_catalog.int8),
    1, 8), 'hex')::pg_catalog.uuid
$$;

COMMENT ON FUNCTION audit._new_entry_id() IS
    'A new entry''s id: a version 7 uuid (RFC 9562), Unix milliseconds and their sub-millisecond fraction, then 62 random bits.';

CREATE TABLE audit.audit_logs (
    id           uuid        NOT NULL DEFAULT audit._new_entry_id(),
    company_id   uuid        NOT NULL,
    franchise_id uuid,
    user_id      uuid,
    action       text        NOT NULL,
    entity       text        NOT NULL,
    entity_id    uuid        NOT NULL,
    details      jsonb       NOT NULL,
    -- The original specification had a nullable `timestamp` (without time
    -- zone). An audit trail needs an absolute instant that is always present:
    -- a local time read under another TimeZone setting, or a missing one,
    -- proves nothing. Hence timestamptz NOT NULL.
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Added by 0002.tamper-evidence, hence last and nullable: see its comment.
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    txid         bigint      DEFAULT pg_catalog.txid_current(),
    -- Added by 0005.change-tracking, hence last: the extra keys of the
    -- writing transaction's context (request id, client address ...).
    context      jsonb       NOT NULL DEFAULT '{}',
    -- Added by 0012.portable-horizon, hence last: the system identifier of
    -- the cluster the entry was written on, whose transactions txid counts.
    -- Another cluster counts its own, from wherever its counter stands: a
    -- restore, a switchover to a logical replica, a moved Citus shard.
    -- Read from pg_control on every entry (a few µs): no cache could be
    -- trusted, as any role may set a setting, and one left from another
    -- cluster would stamp a restored log with the wrong counter's name.
    origin       bigint      DEFAULT (pg_catalog.pg_control_system()).system_identifier,
    CONSTRAINT audit_logs_pkey PRIMARY KEY (id),
    CONSTRAINT audit_logs_action_not_blank CHECK (action ~ '[^[:space:]]'),
    CONSTRAINT audit_logs_entity_not_blank CHECK (entity ~ '[^[:space:]]'),
    CONSTRAINT audit_logs_details_is_object CHECK (pg_catalog.jsonb_typeof(details) = 'object'),
    CONSTRAINT audit_logs_context_is_object CHECK (pg_catalog.jsonb_typeof(context) = 'object'),
    -- Added by 0009.trust-boundary (validated by 0010). Sealing and verifying
    -- hash the text of details and context, and a few stored bytes can print
    -- as a gigabyte (a number like 1e131071; control characters, six bytes
    -- each): one such entry would make every later seal fail, for every
    -- company. 1 MiB of text is far beyond what an entry needs.
    CONSTRAINT audit_logs_details_printable CHECK (pg_catalog.octet_length(details::pg_catalog.text) <= 1048576),
    CONSTRAINT audit_logs_context_printable CHECK (pg_catalog.octet_length(context::pg_catalog.text) <= 1048576)
);

-- The indexes of reading (0058_reading.sql), each ending in (created_at, id),
-- the order pages follow, so that no query sorts. Rebuilt by
-- 0008.reading-indexes, CONCURRENTLY; audit_idx gained id there. The user
-- index leaves out the entries of no user, which no search by user can want:
-- a tracked bulk statement outside any context costs one index less a row.
CREATE INDEX audit_idx ON audit.audit_logs (company_id, franchise_id, created_at, id);
CREATE INDEX audit_logs_company_idx ON audit.audit_logs (company_id, created_at, id);
CREATE INDEX audit_logs_user_idx ON audit.audit_logs (company_id, user_id, created_at, id)
    WHERE user_id IS NOT NULL;
CREATE INDEX audit_logs_entity_idx ON audit.audit_logs (entity, entity_id, created_at, id);

-- Created by 0003.txid-index (CONCURRENTLY, outside a transaction). Entries
-- arrive in nearly txid order, so a BRIN index finds the unsealed ones for
-- audit.seal() at almost no cost to writers.
CREATE INDEX audit_logs_txid_brin ON audit.audit_logs USING brin (txid);

-- Created by 0012.portable-horizon, when no entry had an origin yet (so at
-- no cost). audit.seal() finds, origin by origin, the entries of other
-- clusters not sealed yet: a replica's, a restored dump's, a moved shard's.
CREATE INDEX audit_logs_origin_txid_idx ON audit.audit_logs (origin, txid) WHERE origin IS NOT NULL;

COMMENT ON TABLE audit.audit_logs IS
    'Append-only record of critical actions. Write with audit.record_audit(); UPDATE, DELETE and TRUNCATE are refused for every role.';
COMMENT ON COLUMN audit.audit_logs.id IS
    'Entry id, chosen by the database on insert (a supplied value is replaced).';
COMMENT ON COLUMN audit.audit_logs.company_id IS
    'Tenant: the company the action belongs to.';
COMMENT ON COLUMN audit.audit_logs.franchise_id IS
    'Franchise of the company the action belongs to, if any.';
COMMENT ON COLUMN audit.audit_logs.user_id IS
    'User who performed the action; NULL for actions of the system itself.';
COMMENT ON COLUMN audit.audit_logs.action IS
    'What was done, e.g. CREATE_INVOICE. Never blank.';
COMMENT ON COLUMN audit.audit_logs.entity IS
    'Kind of thing it was done to, e.g. invoice. Never blank.';
COMMENT ON COLUMN audit.audit_logs.entity_id IS
    'Id of the thing it was done to.';
COMMENT ON COLUMN audit.audit_logs.details IS
    'Structured metadata (changed fields, amounts, reasons): always a JSON object.';
COMMENT ON COLUMN audit.audit_logs.created_at IS
    'When the entry was written: the start of the writing transaction, set by the database on insert (a supplied value is replaced).';
COMMENT ON COLUMN audit.audit_logs.txid IS
    'Id of the writing transaction (pg_current_xact_id()), set by the database on insert: sealing uses it to know when no more entries can appear in a range. NULL for entries written before sealing was installed; they count as transaction 0.';
COMMENT ON COLUMN audit.audit_logs.origin IS
    'System identifier of the cluster the entry was written on (pg_control_system()), set by the database on insert: txid counts that cluster''s transactions. NULL for entries written before 0012.portable-horizon.';
COMMENT ON COLUMN audit.audit_logs.context IS
    'The extra keys of the writing transaction''s context (audit.set_context(extra => ...)): request id, client address and the like. ''{}'' when there were none.';
COMMENT ON INDEX audit.audit_logs_origin_txid_idx IS
    'Finds each origin''s entries not sealed yet, for audit.seal().';
COMMENT ON INDEX audit.audit_idx IS
    'Serves a company''s entries, per franchise, by time.';
COMMENT ON INDEX audit.audit_logs_company_idx IS
    'Serves a company''s entries, all franchises, by time.';
COMMENT ON INDEX audit.audit_logs_user_idx IS
    'Serves a company''s entries, per user, by time (entries with a user only).';
COMMENT ON INDEX audit.audit_logs_entity_idx IS
    'Serves the history of one entity, by time.';
COMMENT ON INDEX audit.audit_logs_txid_brin IS
    'Finds the entries of recent transactions, for audit.seal().';
