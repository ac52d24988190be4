-- Privileges, all in one place.
--
-- Start from nothing: PUBLIC gets no privilege in schema audit, not even the
-- EXECUTE on functions that PostgreSQL grants it by default. Then each role
-- gets exactly what it needs. The owner of the objects (the role that applied
-- the migrations) keeps its privileges; the triggers bind it.

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

-- Both: say who acts, see what is tracked and where strict mode is on.
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_writer, audit_reader;
GRANT SELECT ON audit.tracked_tables, audit.strict_mode TO audit_writer, audit_reader;

-- audit_reader: read entries and blocks, verify, take digests; nothing else.
GRANT SELECT ON audit.audit_logs, audit.blocks TO audit_reader;
GRANT EXECUTE ON FUNCTION audit.verify(uuid), audit.digest() TO audit_reader;

-- Both readers: an entity's history and a company's search. audit_tenant_reader
-- reads entries and blocks too, but row-level security shows it the company of
-- its context only (0092_tenant_readers.sql); it needs set_context to name it.
GRANT SELECT ON audit.audit_logs, audit.blocks TO audit_tenant_reader;
-- They run with the caller's rights (for row-level security), so the caller
-- needs their argument check too.
GRANT EXECUTE ON FUNCTION audit.history(text, uuid, integer, timestamptz, uuid),
                          audit.search(uuid, uuid, uuid, text, text, timestamptz, timestamptz, integer, timestamptz, uuid),
                          audit._page_problem(integer, timestamptz, uuid)
    TO audit_reader, audit_tenant_reader;
GRANT EXECUTE ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) TO audit_tenant_reader;

-- The owner keeps audit.seal(), which it schedules (pg_cron, cron, audit-py
-- seal --watch), and audit.enable_strict_mode() and disable_strict_mode().
