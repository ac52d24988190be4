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
-- into a range that is already sealed. audit_definer, which every recording
-- function runs as, may not name these columns at all (0090_grants.sql), and
-- gets their defaults (0020_audit_logs.sql), which cost half what this
-- trigger does; every other role, which privileges cannot stop, is stamped here
-- with the same values. Assigning, rather than refusing a supplied value, is
-- the only way: a trigger cannot tell a supplied value from the default.
-- Its body names only qualified pg_catalog functions and types; the
-- search_path is pinned all the same, as on every trigger function. Every
-- statement in it is a simple expression, which PL/pgSQL evaluates without
-- the executor (0014.cheaper-entries): a subquery there cost 3 µs an entry.
-- The values are the columns' defaults (0020_audit_logs.sql).
CREATE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.id := audit._new_entry_id();
    NEW.created_at := pg_catalog.now();
    NEW.txid := pg_catalog.txid_current();
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
-- audit_definer's inserts have their stamps from the defaults, and could not
-- name them: the condition spares them the trigger's cost (it is checked
-- without calling the function).
CREATE TRIGGER audit_logs_stamp
    BEFORE INSERT ON audit.audit_logs
    FOR EACH ROW WHEN (CURRENT_USER OPERATOR(pg_catalog.<>) 'audit_definer')
    EXECUTE FUNCTION audit._stamp_entry();

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
    'Sets id, created_at, txid and origin of every new entry, but audit_definer''s (the columns'' defaults set them, and it may not name them) and a replication session''s (which keeps the publisher''s).';
COMMENT ON TRIGGER audit_logs_refuse_update ON audit.audit_logs IS
    'Refuses UPDATE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_delete ON audit.audit_logs IS
    'Refuses DELETE for every role, replication sessions included (ENABLE ALWAYS).';
COMMENT ON TRIGGER audit_logs_refuse_truncate ON audit.audit_logs IS
    'Refuses TRUNCATE for every role, replication sessions included (ENABLE ALWAYS).';
