-- Tenant readers: a reader confined to one company.
--
-- A company's own admin or support staff read through a login granted
-- audit_tenant_reader, and see only the company named by the transaction's
-- context (audit.company_id, set with audit.set_context() or SET LOCAL,
-- 0036_context.sql); with no company in the context they see nothing.
-- Row-level security enforces it, on entries and on blocks, whatever the
-- query. audit_reader keeps reading everything. The owner, who bypasses
-- row-level security, still writes through audit.record_audit() and seals.
-- A role granted both reader roles reads everything: policies add up.

ALTER TABLE audit.audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.blocks ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_logs_reader ON audit.audit_logs FOR SELECT TO audit_reader USING (true);
CREATE POLICY audit_logs_tenant_reader ON audit.audit_logs FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid);
CREATE POLICY blocks_reader ON audit.blocks FOR SELECT TO audit_reader USING (true);
CREATE POLICY blocks_tenant_reader ON audit.blocks FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid);

COMMENT ON POLICY audit_logs_reader ON audit.audit_logs IS 'audit_reader reads every entry.';
COMMENT ON POLICY audit_logs_tenant_reader ON audit.audit_logs IS
    'audit_tenant_reader reads the entries of the company in its transaction''s context, and no other.';
COMMENT ON POLICY blocks_reader ON audit.blocks IS 'audit_reader reads every block.';
COMMENT ON POLICY blocks_tenant_reader ON audit.blocks IS
    'audit_tenant_reader reads the blocks of the company in its transaction''s context, and no other.';
