-- Privileges of each role on schema audit and on each table and view, row-level security policies, and
-- the roles themselves: what each may do, and that nothing is granted to anyone else. EXECUTE on the
-- functions is checked with the function list, in 30_functions.sql.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
SELECT no_plan();

-- The roles: NOLOGIN, and no attribute that reaches beyond schema audit.
SELECT has_role(r) FROM unnest(ARRAY['audit_writer', 'audit_reader', 'audit_tenant_reader', 'audit_admin',
                                     'audit_owner', 'audit_definer']::name[]) AS r;
SELECT results_eq(
    $$SELECT rolname::text COLLATE "default", rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
      FROM pg_roles WHERE rolname IN ('audit_writer', 'audit_reader', 'audit_tenant_reader', 'audit_admin',
                                      'audit_owner', 'audit_definer') ORDER BY rolname$$,
    $$VALUES ('audit_admin', false, false, false, false, false, false),
             ('audit_definer', false, false, false, false, false, false),
             ('audit_owner', false, false, false, false, false, false),
             ('audit_reader', false, false, false, false, false, false),
             ('audit_tenant_reader', false, false, false, false, false, false),
             ('audit_writer', false, false, false, false, false, false)$$,
    'the audit roles: NOLOGIN, NOSUPERUSER, NOCREATEROLE, NOCREATEDB, NOREPLICATION, NOBYPASSRLS');
SELECT is_empty(
    $$SELECT m.roleid::regrole, m.member::regrole FROM pg_auth_members m
      WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname IN ('audit_writer', 'audit_reader',
                         'audit_tenant_reader', 'audit_admin', 'audit_owner', 'audit_definer'))$$,
    'the audit roles are members of no role (pg_write_all_data, each other ...)');
-- Superusers can take any role; no other login can take, or has the rights of, the roles that own the log.
SELECT is_empty(
    format($$SELECT r.rolname, o.role FROM pg_roles r, unnest(ARRAY['audit_owner', 'audit_definer']) AS o(role)
             WHERE r.rolcanlogin AND NOT r.rolsuper
               AND (pg_has_role(r.oid, o.role, 'USAGE') OR pg_has_role(r.oid, o.role, %L))$$,
           CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END),
    'no login (but superusers) can act as audit_owner or audit_definer');

-- Schema audit: USAGE for the roles that use it, CREATE for its owner only, nothing for PUBLIC.
SELECT schema_privs_are('audit', s.role::name, s.privs::name[])
FROM (VALUES ('audit_writer', '{USAGE}'), ('audit_reader', '{USAGE}'), ('audit_tenant_reader', '{USAGE}'),
             ('audit_admin', '{USAGE}'), ('audit_owner', '{CREATE,USAGE}'), ('audit_definer', '{USAGE}'),
             ('public', '{}')) AS s(role, privs);

-- Each table and view, each role: exactly these privileges. audit_owner owns them all and keeps every
-- privilege (the triggers bind it); PUBLIC has none. "ALL" is every privilege pgTAP checks on this
-- PostgreSQL version (MAINTAIN from 17 on).
SELECT table_privs_are('audit', g.relation, g.role, CASE WHEN g.privs = '{ALL}' THEN _table_privs() ELSE g.privs END)
FROM (SELECT t.relation, r.role, CASE r.role WHEN 'audit_writer' THEN t.writer WHEN 'audit_reader' THEN t.reader
                                             WHEN 'audit_tenant_reader' THEN t.tenant_reader WHEN 'audit_admin' THEN t.admin
                                             WHEN 'audit_definer' THEN t.definer WHEN 'audit_owner' THEN '{ALL}'
                                             ELSE '{}' END::name[] AS privs
      FROM (VALUES
          --  relation         audit_writer  audit_reader  audit_tenant_reader  audit_admin              audit_definer
          (1, 'audit_logs',     '{}',         '{SELECT}',   '{SELECT}',          '{}',                    '{SELECT}'),
          (2, 'blocks',         '{}',         '{SELECT}',   '{SELECT}',          '{}',                    '{SELECT,INSERT}'),
          (3, 'seal_lock',      '{}',         '{}',         '{}',                '{}',                    '{SELECT,UPDATE}'),
          (4, 'strict_mode',    '{SELECT}',   '{SELECT}',   '{}',                '{SELECT,INSERT,DELETE}', '{SELECT}'),
          (5, 'tenant_logins',  '{}',         '{}',         '{}',                '{SELECT,INSERT,DELETE}', '{SELECT}'),
          (6, 'tracked_tables', '{SELECT}',   '{SELECT}',   '{}',                '{}',                    '{}'),
          (7, 'audit_new',      '{}',         '{}',         '{}',                '{}',                    '{SELECT}'),
          (8, 'audit_old',      '{}',         '{}',         '{}',                '{}',                    '{SELECT}')
      ) AS t(n, relation, writer, reader, tenant_reader, admin, definer)
      CROSS JOIN unnest(ARRAY['audit_writer', 'audit_reader', 'audit_tenant_reader', 'audit_admin',
                              'audit_owner', 'audit_definer', 'public']::name[]) WITH ORDINALITY AS r(role, k)
      ORDER BY t.n, r.k) AS g;

-- Granted column by column: INSERT into the log for audit_definer, of every column but the stamp's
-- (id, created_at, txid, origin), which the columns' defaults fill. Nothing else, nothing to any role but
-- the audit roles, and nothing waiting to be granted to objects created later.
SELECT results_eq(
    $$SELECT a.attrelid::regclass::text COLLATE "default", a.attname::text COLLATE "default",
             acl.grantee::regrole::text COLLATE "default", acl.privilege_type::text COLLATE "default"
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) acl
      WHERE c.relnamespace = 'audit'::regnamespace AND a.attacl IS NOT NULL ORDER BY a.attnum$$,
    $$VALUES ('audit.audit_logs', 'company_id', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'franchise_id', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'user_id', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'action', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'entity', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'entity_id', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'details', 'audit_definer', 'INSERT'),
             ('audit.audit_logs', 'context', 'audit_definer', 'INSERT')$$,
    'column privileges in schema audit: audit_definer inserts every column of the log but the stamp''s');
SELECT is_empty(
    $$SELECT object, acl.grantee::regrole, acl.privilege_type
      FROM (SELECT 'schema audit' AS object, n.nspacl AS acl FROM pg_namespace n WHERE n.nspname = 'audit'
            UNION ALL SELECT c.oid::regclass::text, c.relacl FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace
            UNION ALL SELECT p.oid::regprocedure::text, p.proacl FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
            UNION ALL SELECT t.oid::regtype::text, t.typacl FROM pg_type t WHERE t.typnamespace = 'audit'::regnamespace) o,
           aclexplode(o.acl) acl
      WHERE acl.grantee = 0 OR acl.grantee::regrole::text NOT IN ('audit_writer', 'audit_reader', 'audit_tenant_reader',
                                                                  'audit_admin', 'audit_owner', 'audit_definer')$$,
    'in schema audit, privileges go to the audit roles only: none to PUBLIC, none to a login');
SELECT is_empty(
    $$SELECT d.defaclrole::regrole, d.defaclnamespace::regnamespace, d.defaclobjtype FROM pg_default_acl d
      WHERE d.defaclnamespace = 'audit'::regnamespace
         OR d.defaclrole IN ('audit_owner'::regrole, 'audit_definer'::regrole)$$,
    'no default privileges for schema audit or for the roles that own the log');

-- Row-level security (enabled on every table: 10_schema.sql): exactly these policies, each for one
-- command and its roles. Policies add up: a role reads a row if any policy of its own lets it.
SELECT policies_are('audit', 'audit_logs',
    ARRAY['audit_logs_reader', 'audit_logs_tenant_reader', 'audit_logs_definer_read', 'audit_logs_definer_insert']);
SELECT policies_are('audit', 'blocks',
    ARRAY['blocks_reader', 'blocks_tenant_reader', 'blocks_definer_read', 'blocks_definer_insert']);
SELECT policies_are('audit', 'strict_mode', ARRAY['strict_mode_read', 'strict_mode_admin_insert', 'strict_mode_admin_delete']);
SELECT policies_are('audit', 'tenant_logins',
    ARRAY['tenant_logins_read', 'tenant_logins_admin_insert', 'tenant_logins_admin_delete']);
SELECT policies_are('audit', 'seal_lock', ARRAY['seal_lock_definer_read', 'seal_lock_definer_update']);
SELECT policy_cmd_is('audit', p.table_name::name, p.policy::name, p.command) || E'\n' ||
       policy_roles_are('audit', p.table_name::name, p.policy::name, p.roles)
FROM (VALUES
    ('audit_logs', 'audit_logs_reader', 'SELECT', '{audit_reader}'::name[]),
    ('audit_logs', 'audit_logs_tenant_reader', 'SELECT', '{audit_tenant_reader}'),
    ('audit_logs', 'audit_logs_definer_read', 'SELECT', '{audit_definer}'),
    ('audit_logs', 'audit_logs_definer_insert', 'INSERT', '{audit_definer}'),
    ('blocks', 'blocks_reader', 'SELECT', '{audit_reader}'),
    ('blocks', 'blocks_tenant_reader', 'SELECT', '{audit_tenant_reader}'),
    ('blocks', 'blocks_definer_read', 'SELECT', '{audit_definer}'),
    ('blocks', 'blocks_definer_insert', 'INSERT', '{audit_definer}'),
    ('strict_mode', 'strict_mode_read', 'SELECT', '{audit_writer,audit_reader,audit_definer,audit_admin}'),
    ('strict_mode', 'strict_mode_admin_insert', 'INSERT', '{audit_admin}'),
    ('strict_mode', 'strict_mode_admin_delete', 'DELETE', '{audit_admin}'),
    ('tenant_logins', 'tenant_logins_read', 'SELECT', '{audit_definer,audit_admin}'),
    ('tenant_logins', 'tenant_logins_admin_insert', 'INSERT', '{audit_admin}'),
    ('tenant_logins', 'tenant_logins_admin_delete', 'DELETE', '{audit_admin}'),
    ('seal_lock', 'seal_lock_definer_read', 'SELECT', '{audit_definer}'),
    ('seal_lock', 'seal_lock_definer_update', 'UPDATE', '{audit_definer}')
) AS p(table_name, policy, command, roles);
SELECT is_empty(
    $$SELECT polrelid::regclass, polname FROM pg_policy
      WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace) AND NOT polpermissive$$,
    'no restrictive policy in schema audit');

SELECT * FROM finish();
ROLLBACK;
