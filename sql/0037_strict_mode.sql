-- Strict mode: no entry without a user.
--
-- Once a DBA turns it on, for the whole database or for the login roles an
-- application uses, an entry whose user_id would be NULL (neither passed nor
-- in the context) is refused with SQLSTATE AU006, and the change it records
-- with it. It is a table rather than a setting because PostgreSQL lets only
-- a superuser ALTER DATABASE or ALTER ROLE ... SET a custom setting, and
-- because a session cannot turn a table row off behind the DBA's back.
-- It catches code that forgets the context; it cannot catch code that lies
-- about it.

CREATE TABLE audit.strict_mode (
    -- NULL: every role of this database.
    login_role regrole,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by name        NOT NULL DEFAULT session_user
);

-- One row per role, and one for the whole database (NULL counts as 0).
CREATE UNIQUE INDEX strict_mode_login_role_key ON audit.strict_mode ((COALESCE(login_role::oid, 0::oid)));
-- Added by 0012.portable-horizon: a publication FOR ALL TABLES refuses a DELETE
-- of a published table without a replica identity (disable_strict_mode()).
ALTER TABLE audit.strict_mode REPLICA IDENTITY FULL;

COMMENT ON TABLE audit.strict_mode IS
    'Where strict mode is on: entries need a user_id. A row with login_role NULL covers every role. Change it with audit.enable_strict_mode() and audit.disable_strict_mode().';
COMMENT ON COLUMN audit.strict_mode.login_role IS
    'The login role (and its members) whose sessions must name a user; NULL for every role.';
COMMENT ON COLUMN audit.strict_mode.enabled_at IS
    'When strict mode was turned on for this role.';
COMMENT ON COLUMN audit.strict_mode.enabled_by IS
    'Who turned it on (the session''s login role).';
COMMENT ON INDEX audit.strict_mode_login_role_key IS
    'One row per role, and one for the whole database.';

-- Raises AU006 when strict mode covers this session. The session's login
-- role (session_user) is the one checked: a SECURITY DEFINER caller cannot
-- see the role it was called by, and a pooled application shares its login.
CREATE FUNCTION audit._require_user(operation text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM audit.strict_mode s
               WHERE s.login_role IS NULL
                  OR pg_catalog.pg_has_role(session_user, s.login_role::pg_catalog.oid, 'MEMBER')) THEN
        RAISE EXCEPTION '%: strict mode is on and no user_id is known', operation
            USING ERRCODE = 'AU006', COLUMN = 'user_id',
                  HINT = 'Pass user_id, or set it for the transaction with audit.set_context(user_id => ...).';
    END IF;
END;
$$;

COMMENT ON FUNCTION audit._require_user(text) IS
    'Refuses (AU006) an entry without user_id when strict mode covers the session''s login role.';

CREATE FUNCTION audit.enable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO audit.strict_mode (login_role) VALUES (enable_strict_mode.login_role)
ON CONFLICT ((COALESCE(login_role::pg_catalog.oid, 0::pg_catalog.oid))) DO NOTHING;
$$;

COMMENT ON FUNCTION audit.enable_strict_mode(regrole) IS
    'Turns strict mode on for a login role, or for every role when called without one. Harmless when already on.';

CREATE FUNCTION audit.disable_strict_mode(login_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM audit.strict_mode s
WHERE s.login_role IS NOT DISTINCT FROM disable_strict_mode.login_role;
$$;

COMMENT ON FUNCTION audit.disable_strict_mode(regrole) IS
    'Turns strict mode off for a login role, or the database-wide setting when called without one.';
