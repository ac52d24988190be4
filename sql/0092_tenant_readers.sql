-- Tenant readers: a reader confined to one company.
--
-- A company's own admin or support staff read through a login granted
-- audit_tenant_reader, and see only the company named by the transaction's
-- context (audit.company_id, set with audit.set_context() or SET LOCAL,
-- 0036_context.sql); with no company in the context they see nothing.
-- Row-level security enforces it, on entries and on blocks, whatever the
-- query. audit_reader keeps reading everything, and audit_definer, as which
-- the SECURITY DEFINER functions run, reads and inserts everything too.
-- A role granted both reader roles reads everything: policies add up.
--
-- The context is the application's to set: on its own, it confines a login
-- that only the application uses. A login that people may use directly is
-- pinned to its companies in audit.tenant_logins; then naming another company
-- in the context shows nothing.

CREATE TABLE audit.tenant_logins (
    login_role regrole NOT NULL,
    company_id uuid    NOT NULL,
    CONSTRAINT tenant_logins_pkey PRIMARY KEY (login_role, company_id)
);

COMMENT ON TABLE audit.tenant_logins IS
    'Logins pinned to companies: a tenant reader whose login (or a role it belongs to) is listed reads those companies only, whatever its context names. Change it with audit.pin_tenant() and audit.unpin_tenant().';
COMMENT ON COLUMN audit.tenant_logins.login_role IS 'The login, or a role its members log in as.';
COMMENT ON COLUMN audit.tenant_logins.company_id IS 'A company that login may read.';
COMMENT ON INDEX audit.tenant_logins_pkey IS 'One row per login and company.';

-- SECURITY DEFINER, so that tenant readers need no privilege on the table,
-- and cannot list which logins read which companies.
CREATE FUNCTION audit._pinned_companies()
RETURNS uuid[]
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.array_agg(p.company_id)
FROM audit.tenant_logins p
WHERE pg_catalog.pg_has_role(session_user, p.login_role::pg_catalog.oid, 'MEMBER')
$$;

COMMENT ON FUNCTION audit._pinned_companies() IS
    'The companies the session''s login is pinned to, NULL when it is not pinned.';

-- A pin confines tenant readers only (0012.portable-horizon made it say so):
-- pinning an auditor, which reads every company, would seem to work and do
-- nothing.
CREATE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO audit.tenant_logins (login_role, company_id) VALUES (pin_tenant.login_role, pin_tenant.company_id)
    ON CONFLICT DO NOTHING;
    IF NOT pg_catalog.pg_has_role(pin_tenant.login_role::pg_catalog.oid, 'audit_tenant_reader', 'USAGE') THEN
        RAISE WARNING 'audit.pin_tenant(): % is not an audit_tenant_reader: the pin confines nothing until it is one',
            pin_tenant.login_role;
    ELSIF pg_catalog.pg_has_role(pin_tenant.login_role::pg_catalog.oid, 'audit_reader', 'USAGE') THEN
        RAISE WARNING 'audit.pin_tenant(): % is an audit_reader too, which reads every company: the pin confines nothing',
            pin_tenant.login_role;
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.pin_tenant(regrole, uuid) IS
    'Pins a login (or a role) to a company: as a tenant reader it reads that company, and any other it is pinned to, only.';

CREATE FUNCTION audit.unpin_tenant(login_role regrole, company_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.tenant_logins p
WHERE p.login_role = unpin_tenant.login_role AND (unpin_tenant.company_id IS NULL OR p.company_id = unpin_tenant.company_id);
$$;

COMMENT ON FUNCTION audit.unpin_tenant(regrole, uuid) IS
    'Unpins a login from a company, or from all of them.';

ALTER TABLE audit.audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.blocks ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_logs_reader ON audit.audit_logs FOR SELECT TO audit_reader USING (true);
-- The pinned companies are read once per query (an uncorrelated subquery),
-- and compared with the context's company, not the row's: the row is matched
-- by the first condition, which an index serves.
CREATE POLICY audit_logs_tenant_reader ON audit.audit_logs FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY ((SELECT audit._pinned_companies())::uuid[]), true));
CREATE POLICY blocks_reader ON audit.blocks FOR SELECT TO audit_reader USING (true);
CREATE POLICY audit_logs_definer_read ON audit.audit_logs FOR SELECT TO audit_definer USING (true);
CREATE POLICY audit_logs_definer_insert ON audit.audit_logs FOR INSERT TO audit_definer WITH CHECK (true);
CREATE POLICY blocks_definer_read ON audit.blocks FOR SELECT TO audit_definer USING (true);
CREATE POLICY blocks_definer_insert ON audit.blocks FOR INSERT TO audit_definer WITH CHECK (true);
CREATE POLICY blocks_tenant_reader ON audit.blocks FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY ((SELECT audit._pinned_companies())::uuid[]), true));

COMMENT ON POLICY audit_logs_reader ON audit.audit_logs IS 'audit_reader reads every entry.';
COMMENT ON POLICY audit_logs_tenant_reader ON audit.audit_logs IS
    'audit_tenant_reader reads the entries of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies.';
COMMENT ON POLICY blocks_reader ON audit.blocks IS 'audit_reader reads every block.';
COMMENT ON POLICY audit_logs_definer_read ON audit.audit_logs IS
    'audit_definer (the SECURITY DEFINER functions) reads every entry: to seal, verify, and return a new entry''s id.';
COMMENT ON POLICY audit_logs_definer_insert ON audit.audit_logs IS
    'audit_definer (audit.record_audit(), audit.record_audit_many(), tracking) inserts entries.';
COMMENT ON POLICY blocks_definer_read ON audit.blocks IS 'audit_definer (seal, verify, digest) reads every block.';
COMMENT ON POLICY blocks_definer_insert ON audit.blocks IS 'audit_definer (audit.seal()) inserts blocks.';
COMMENT ON POLICY blocks_tenant_reader ON audit.blocks IS
    'audit_tenant_reader reads the blocks of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies.';

-- PUBLIC gets nothing here either (0090_grants.sql came before these).
REVOKE ALL ON FUNCTION audit._pinned_companies(), audit.pin_tenant(regrole, uuid), audit.unpin_tenant(regrole, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._pinned_companies() TO audit_tenant_reader;
GRANT EXECUTE ON FUNCTION audit.pin_tenant(regrole, uuid), audit.unpin_tenant(regrole, uuid) TO audit_admin;
GRANT SELECT, INSERT, DELETE ON audit.tenant_logins TO audit_admin;
GRANT SELECT ON audit.tenant_logins TO audit_definer;
