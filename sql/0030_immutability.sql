-- Immutability: what is written stays as written.
--
-- Privileges keep applications out (see 0090_grants.sql); these triggers hold
-- for the roles that privileges cannot stop: the table owner and superusers.
-- Every trigger is ENABLE ALWAYS, so `SET session_replication_role = replica`
-- (how logical-replication tools skip triggers) does not skip them.
-- SQLSTATE AU001 (immutable violation) is the project's own.

CREATE FUNCTION audit._refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: audit entries are immutable', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'AU001',
              HINT = 'Audit entries can only be added, with audit.record_audit().';
END;
$$;

COMMENT ON FUNCTION audit._refuse_change() IS
    'Trigger function: refuses the operation that fired it with SQLSTATE AU001.';

-- The entry's identity, time and transaction are the database's: an owner
-- inserting by hand cannot back-date an entry, reuse an id, or slip an entry
-- into a range that is already sealed. Assigning here, rather than
-- refusing a supplied value, is the only way: a trigger cannot tell a
-- supplied value from the column default.
-- Its body names only qualified pg_catalog functions and types; the
-- search_path is pinned all the same, as on every trigger function, at a
-- cost of about a microsecond per row. Every statement in it is a simple
-- expression, which PL/pgSQL evaluates without the executor (0014.cheaper-
-- entries): a subquery there cost 3 µs an entry.
--
-- The id is time-ordered (RFC 9562 version 7, from 0014.cheaper-entries):
-- 48 bits of Unix milliseconds, the version, 12 bits of the sub-millisecond
-- fraction (the RFC's "increased clock precision"), the variant and 62
-- random bits from gen_random_uuid(). The primary key then grows at its
-- right edge, as the log does, rather than on a random page of an index
-- that outgrows memory as the log grows. It says when the entry was
-- written, which created_at says anyway. clock_timestamp() rather than
-- now(): the entries of one transaction follow each other.
CREATE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    micros pg_catalog.int8 := (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
                               OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8;
BEGIN
    NEW.id := pg_catalog.encode(pg_catalog.overlay(
        pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
        pg_catalog.int8send(((micros OPERATOR(pg_catalog./) 1000) OPERATOR(pg_catalog.<<) 16)
                            OPERATOR(pg_catalog.|) 28672  -- 0x7000: version 7
                            OPERATOR(pg_catalog.|) ((micros OPERATOR(pg_catalog.%) 1000) OPERATOR(pg_catalog.*) 4096
                                                    OPERATOR(pg_catalog./) 1000)),
        1, 8), 'hex')::pg_catalog.uuid;
    NEW.created_at := pg_catalog.now();
    -- txid_current() is pg_current_xact_id() as a bigint, with no text round trip.
    NEW.txid := pg_catalog.txid_current();
    -- Read from pg_control on every call (a few µs): no cache could be
    -- trusted, as any role may set a setting, and one left from another
    -- cluster would stamp a restored log with the wrong counter's name.
    NEW.origin := (pg_catalog.pg_control_system()).system_identifier;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION audit._stamp_entry() IS
    'Trigger function: sets id, created_at, txid and origin of a new entry, whatever the insert supplied.';

-- The stamp fires in every session but a replication session
-- (session_replication_role = replica), which is what a logical
-- subscription's apply worker is: a replica keeps each entry as its
-- publisher stamped it, id, time, txid and origin, and so keeps verifying.
-- No writer can skip it that way: only a superuser may set
-- session_replication_role, and a superuser can disable any trigger anyway.
-- (A login that could make a subscription write into the log would have to
-- act as audit_owner, the table's owner: see the trust model.) The refusals
-- below stay ENABLE ALWAYS: a replica refuses UPDATE and DELETE too.
CREATE TRIGGER audit_logs_stamp
    BEFORE INSERT ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry();

CREATE TRIGGER audit_logs_refuse_update
    BEFORE UPDATE ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_update;

CREATE TRIGGER audit_logs_refuse_delete
    BEFORE DELETE ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_delete;

-- TRUNCATE fires no row triggers: it needs a statement trigger of its own.
CREATE TRIGGER audit_logs_refuse_truncate
    BEFORE TRUNCATE ON audit.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_change();
ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_truncate;

COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id, created_at, txid and origin of every new entry, but in replication sessions, which keep the publisher''s.';
COMMENT ON TRIGGER audit_logs_refuse_update ON audit.audit_logs IS
    'Refuses UPDATE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_delete ON audit.audit_logs IS
    'Refuses DELETE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_truncate ON audit.audit_logs IS
    'Refuses TRUNCATE for every role, replication sessions included (ENABLE ALWAYS).';
