-- Citus: strict mode and tenant pins name their roles by name, not by oid.
-- Runs first of sql/citus/, before anything is distributed.
--
-- On one PostgreSQL, audit.strict_mode and audit.tenant_logins keep a
-- regrole: the role's oid, which follows the role through a rename and
-- means nothing once it is dropped. On Citus the two tables become
-- reference tables, a copy on every node (0010_distribute.sql), and each
-- node gives its own oids: Citus creates, alters and renames a role on
-- every node by its name. A statement sent to the nodes spells a regrole
-- out as a name, which every node resolves to its own oid; but Citus
-- copies a shard in binary form (citus 13.0.5, CanUseBinaryCopyFormat()),
-- where a regrole is its oid. So the copy on a worker added later (or
-- made again by a rebalance) named, on that worker, whichever role had
-- the oid the pin had on the node copied from: the pinned tenant read
-- every company there, and strict mode covered another login. A name means
-- the same role on every node.
--
-- What follows from names: a pin or strict mode names the role it was
-- given, whatever happens to it later, and Citus 13.0.5 renames a role on
-- the coordinator only (NOTICE: not propagating ALTER ROLE ... RENAME TO
-- commands to worker nodes), so a rename leaves the nodes disagreeing on
-- its name anyway. A row that names no role on the node that reads it
-- therefore fails closed, with an error that names it: strict mode then
-- covers every login, and a tenant reader reads nothing (until an
-- audit_admin deletes the row: README, Scaling out). The functions keep
-- their regrole arguments, so that a role that does not exist is refused
-- when it is named.

SET LOCAL lock_timeout = '5s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;

DROP INDEX audit.strict_mode_login_role_key;
ALTER TABLE audit.strict_mode
    ALTER COLUMN login_role TYPE name USING pg_catalog.pg_get_userbyid(login_role::pg_catalog.oid);
CREATE UNIQUE INDEX strict_mode_login_role_key ON audit.strict_mode ((COALESCE(login_role, ''::name)));
COMMENT ON INDEX audit.strict_mode_login_role_key IS
    'One row per role, and one for the whole database.';
COMMENT ON COLUMN audit.strict_mode.login_role IS
    'The name of the login role (and its members) whose sessions must name a user; NULL for every role. (Citus: a name, the same role on every node.)';

ALTER TABLE audit.tenant_logins
    ALTER COLUMN login_role TYPE name USING pg_catalog.pg_get_userbyid(login_role::pg_catalog.oid);
COMMENT ON COLUMN audit.tenant_logins.login_role IS
    'The name of the login, or of a role its members log in as. (Citus: a name, the same role on every node.)';

-- Auditors read the pins on Citus: every node holds a copy, which a
-- superuser on one worker could change alone, and `audit-py verify` (an
-- audit_reader) compares each worker's copy with the coordinator's, as it
-- does strict mode's. An auditor reads every company's entries anyway;
-- tenant readers still see no pin.
GRANT SELECT ON audit.tenant_logins TO audit_reader;
ALTER POLICY tenant_logins_read ON audit.tenant_logins TO audit_definer, audit_admin, audit_reader;
COMMENT ON POLICY tenant_logins_read ON audit.tenant_logins IS
    'The function role (tenant reading), admins and auditors (Citus: verify compares the copies) see the pins.';

-- As on one PostgreSQL (sql/0037_strict_mode.sql), the role looked up by
-- name on the node the entry is written on.
CREATE OR REPLACE FUNCTION audit._require_user(operation text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown name;
    covered boolean;
BEGIN
    SELECT pg_catalog.min(s.login_role) FILTER (WHERE pg_catalog.to_regrole(pg_catalog.quote_ident(s.login_role)) IS NULL),
           pg_catalog.bool_or(s.login_role IS NULL
                              OR pg_catalog.pg_has_role(session_user,
                                                        pg_catalog.to_regrole(pg_catalog.quote_ident(s.login_role))::pg_catalog.oid,
                                                        'MEMBER'))
    INTO unknown, covered
    FROM audit.strict_mode s;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION '%: strict mode is on for role %, which does not exist on this node, and no user_id is known', operation, unknown
            USING ERRCODE = 'AU006', COLUMN = 'user_id',
                  DETAIL = 'A strict mode row that names no role covers every login (a role renamed or dropped since: Citus renames a role on the coordinator only).',
                  HINT = 'Pass user_id; an audit_admin removes the row with DELETE FROM audit.strict_mode WHERE login_role = ''<name>''.';
    ELSIF covered THEN
        RAISE EXCEPTION '%: strict mode is on and no user_id is known', operation
            USING ERRCODE = 'AU006', COLUMN = 'user_id',
                  HINT = 'Pass user_id, or set it for the transaction with audit.set_context(user_id => ...).';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION audit.enable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO audit.strict_mode (login_role)
VALUES (pg_catalog.pg_get_userbyid(enable_strict_mode.login_role::pg_catalog.oid))
ON CONFLICT ((COALESCE(login_role, ''::pg_catalog.name))) DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION audit.disable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.strict_mode s
WHERE s.login_role IS NOT DISTINCT FROM pg_catalog.pg_get_userbyid(disable_strict_mode.login_role::pg_catalog.oid);
$$;

-- As in sql/0092_tenant_readers.sql, by name; the pins read in one scan.
CREATE OR REPLACE FUNCTION audit._pinned_companies()
RETURNS uuid[]
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown name;
    pinned uuid[];
BEGIN
    SELECT pg_catalog.min(p.login_role) FILTER (WHERE pg_catalog.to_regrole(pg_catalog.quote_ident(p.login_role)) IS NULL),
           pg_catalog.array_agg(p.company_id) FILTER (
               WHERE pg_catalog.pg_has_role(session_user,
                                            pg_catalog.to_regrole(pg_catalog.quote_ident(p.login_role))::pg_catalog.oid,
                                            'MEMBER'))
    INTO unknown, pinned
    FROM audit.tenant_logins p;
    IF unknown IS NOT NULL THEN
        -- Not named to the tenant: which logins are pinned is the admins' to know.
        RAISE EXCEPTION 'audit: a tenant pin names a role that does not exist on this node: tenant readers read nothing until it is removed'
            USING ERRCODE = 'AU006',
                  DETAIL = 'Which login it confined cannot be told (a role renamed or dropped since: Citus renames a role on the coordinator only).',
                  HINT = 'An audit_admin finds it with SELECT login_role FROM audit.tenant_logins WHERE to_regrole(quote_ident(login_role)) IS NULL, run on the worker, and removes it with DELETE, then pins the login again.';
    END IF;
    RETURN pinned;
END;
$$;

CREATE OR REPLACE FUNCTION audit.pin_tenant(login_role regrole, company_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO audit.tenant_logins (login_role, company_id)
    VALUES (pg_catalog.pg_get_userbyid(pin_tenant.login_role::pg_catalog.oid), pin_tenant.company_id)
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

CREATE OR REPLACE FUNCTION audit.unpin_tenant(login_role regrole, company_id uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.tenant_logins p
WHERE p.login_role = pg_catalog.pg_get_userbyid(unpin_tenant.login_role::pg_catalog.oid)
  AND (unpin_tenant.company_id IS NULL OR p.company_id = unpin_tenant.company_id);
$$;
