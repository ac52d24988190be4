-- Privileges, all in one place.
--
-- Start from nothing: PUBLIC gets no privilege in schema audit, not even the
-- EXECUTE on functions that PostgreSQL grants it by default. Then each role
-- gets exactly what it needs. The owners of the objects (audit_owner, and
-- audit_definer for the SECURITY DEFINER functions, 0098_ownership.sql) keep
-- their privileges; the triggers bind them.

REVOKE ALL ON SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;

GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader, audit_tenant_reader;

-- audit_writer: record entries, through the functions only.
GRANT EXECUTE ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) TO audit_writer;
GRANT EXECUTE ON FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]) TO audit_writer;
-- Tracking a table is another way to write entries: a role that could attach
-- the trigger function to a table of its own could write any entry through it.
GRANT EXECUTE ON FUNCTION audit.enable_tracking(regclass, text, text[]), audit.disable_tracking(regclass),
                          audit._track_changes(), audit._refuse_truncate() TO audit_writer;
-- enable_tracking() runs as its caller, and asks it first.
GRANT EXECUTE ON FUNCTION audit._untrackable(regclass) TO audit_writer;

-- Both: say who acts, see what is tracked and where strict mode is on.
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_writer, audit_reader;
GRANT SELECT ON audit.tracked_tables, audit.strict_mode TO audit_writer, audit_reader;

-- audit_reader: read entries and blocks, verify, take digests; nothing else.
GRANT SELECT ON audit.audit_logs, audit.blocks TO audit_reader;
GRANT EXECUTE ON FUNCTION audit.verify(uuid), audit.digest() TO audit_reader;
-- What the verifiers compare, for a DBA's own checks (pgTAP, monitoring).
GRANT EXECUTE ON FUNCTION audit._surface(), audit._protection_problems(), audit.schema_version() TO audit_reader;
-- The same checks under a name to keep, for monitoring: no chain is walked.
GRANT EXECUTE ON FUNCTION audit.protection_problems() TO audit_reader;

-- Both readers: an entity's history and a company's search. audit_tenant_reader
-- reads entries and blocks too, but row-level security shows it the company of
-- its context only (0092_tenant_readers.sql); it needs set_context to name it.
GRANT SELECT ON audit.audit_logs, audit.blocks TO audit_tenant_reader;
-- They run with the caller's rights (for row-level security), so the caller
-- needs their argument check too.
GRANT EXECUTE ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid, text),
                          audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid, text),
                          audit._page_problem(integer, timestamptz, uuid),
                          audit.page_cursor(timestamptz, uuid),
                          audit._cursor_position(text, text)
    TO audit_reader, audit_tenant_reader;
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_tenant_reader;

-- audit_definer: what the SECURITY DEFINER functions it owns do, and nothing
-- more. Insert entries and blocks, read them to seal, verify and digest,
-- read strict mode (and the tenant pins, 0092_tenant_readers.sql), take its
-- turn to seal; run the helpers those functions call. Row-level security applies to it too
-- (0092_tenant_readers.sql gives it its policies).
GRANT USAGE ON SCHEMA audit TO audit_definer;
GRANT SELECT ON audit.audit_logs TO audit_definer;
-- Every column but the stamp (id, created_at, txid, origin): those are the
-- columns' defaults (0020_audit_logs.sql), which no code running as it can
-- override, and which spare its inserts the stamp trigger.
GRANT INSERT (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    ON audit.audit_logs TO audit_definer;
GRANT SELECT, INSERT ON audit.blocks TO audit_definer;
GRANT SELECT ON audit.strict_mode TO audit_definer;
GRANT SELECT, UPDATE ON audit.seal_lock TO audit_definer;
-- What _track_changes() finds where a trigger lacks a transition table: reading it refuses.
GRANT SELECT ON audit.audit_new, audit.audit_old TO audit_definer;
GRANT EXECUTE ON FUNCTION audit._new_entry_id(), audit._context_uuid(text), audit._context_extra(), audit._context_user(text),
                          audit._require_user(text), audit._entry_problem(uuid, text, text, uuid, jsonb),
                          audit._missing_company(text, text), audit._untrackable(regclass),
                          audit._refuse_tracking(text),
                          audit._str_bytes(text), audit._opt_uuid_bytes(uuid), audit._micros(timestamptz),
                          audit.entry_hash(audit.audit_logs), audit._merkle_root(bytea[]),
                          audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz),
                          audit._block_hash_v2(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz, bigint),
                          audit._protection_problems(), audit._surface()
    TO audit_definer;

-- audit_admin: seal (pg_cron, cron, audit-py seal --watch) and switch strict
-- mode; 0092_tenant_readers.sql adds pinning tenant logins.
GRANT USAGE ON SCHEMA audit TO audit_admin;
GRANT EXECUTE ON FUNCTION audit.seal(), audit.enable_strict_mode(regrole), audit.disable_strict_mode(regrole)
    TO audit_admin;
GRANT SELECT, INSERT, DELETE ON audit.strict_mode TO audit_admin;
