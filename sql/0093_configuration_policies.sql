-- Row-level security on the log's configuration tables: strict mode, tenant
-- pins and the sealing turn.
--
-- Table privileges alone do not keep a login out of them: PostgreSQL's
-- predefined role pg_write_all_data (which a DBA may well grant an
-- application's login) writes every table of every schema whatever its
-- privileges say, and could turn strict mode off, unpin a tenant, or delete
-- the sealing turn's row and stop sealing for good. It does not bypass
-- row-level security, and a login that is neither of the roles below gets no
-- row to read, change or delete. Added by 0011.verifiable-surface.

ALTER TABLE audit.strict_mode ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.tenant_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.seal_lock ENABLE ROW LEVEL SECURITY;

CREATE POLICY strict_mode_read ON audit.strict_mode FOR SELECT
    TO audit_writer, audit_reader, audit_definer, audit_admin USING (true);
CREATE POLICY strict_mode_admin_insert ON audit.strict_mode FOR INSERT TO audit_admin WITH CHECK (true);
CREATE POLICY strict_mode_admin_delete ON audit.strict_mode FOR DELETE TO audit_admin USING (true);
CREATE POLICY tenant_logins_read ON audit.tenant_logins FOR SELECT TO audit_definer, audit_admin USING (true);
CREATE POLICY tenant_logins_admin_insert ON audit.tenant_logins FOR INSERT TO audit_admin WITH CHECK (true);
CREATE POLICY tenant_logins_admin_delete ON audit.tenant_logins FOR DELETE TO audit_admin USING (true);
CREATE POLICY seal_lock_definer_read ON audit.seal_lock FOR SELECT TO audit_definer USING (true);
CREATE POLICY seal_lock_definer_update ON audit.seal_lock FOR UPDATE TO audit_definer USING (true) WITH CHECK (true);

COMMENT ON POLICY strict_mode_read ON audit.strict_mode IS 'Writers, readers, the function role and admins see where strict mode is on.';
COMMENT ON POLICY strict_mode_admin_insert ON audit.strict_mode IS 'audit_admin turns strict mode on (audit.enable_strict_mode()).';
COMMENT ON POLICY strict_mode_admin_delete ON audit.strict_mode IS 'audit_admin turns strict mode off (audit.disable_strict_mode()).';
COMMENT ON POLICY tenant_logins_read ON audit.tenant_logins IS 'The function role (tenant reading) and admins see the pins.';
COMMENT ON POLICY tenant_logins_admin_insert ON audit.tenant_logins IS 'audit_admin pins a tenant login (audit.pin_tenant()).';
COMMENT ON POLICY tenant_logins_admin_delete ON audit.tenant_logins IS 'audit_admin unpins a tenant login (audit.unpin_tenant()).';
COMMENT ON POLICY seal_lock_definer_read ON audit.seal_lock IS 'audit.seal() reads its turn.';
COMMENT ON POLICY seal_lock_definer_update ON audit.seal_lock IS 'audit.seal() takes its turn by updating the row.';
