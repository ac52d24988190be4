-- The log sharded by company on Citus: run once on a Citus coordinator, as a
-- superuser, after the migrations (audit_py.citus.install(), `audit-py
-- citus-install`). It is not a migration: a plain PostgreSQL never runs it,
-- and the migrations, applied on the coordinator with
-- citus.enable_ddl_propagation = off, build there the same log as anywhere
-- else. This file then changes what distributing needs, says why at each
-- step, and hands every object to Citus, which creates it on every worker.
--
-- Afterwards:
--   audit.audit_logs, audit.blocks  distributed by company_id, co-located: a
--                                   company's entries and blocks live on one
--                                   node, in shards of the same range.
--   audit.strict_mode,              reference tables: a copy on every node,
--   audit.tenant_logins             read where the entries are written/read.
--   audit.seal_lock                 stays on the coordinator (see below).
--   every function of schema audit  created on every worker, same owner,
--                                   settings and privileges (none for
--                                   PUBLIC).
-- 0020_recording.sql then makes every entry written on its company's node.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '300s';
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;

DO $check$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'citus-install: extension citus is not installed in this database'
            USING ERRCODE = 'AU003', HINT = 'Run this on a Citus coordinator, after CREATE EXTENSION citus and citus_add_node().';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = 'audit') THEN
        RAISE EXCEPTION 'citus-install: no schema audit: apply the migrations first'
            USING ERRCODE = 'AU003';
    END IF;
END $check$;

-- Each object below is created on the workers through Citus's own
-- connections, in this transaction; statements of the shards' DDL are sent
-- one node at a time, so that a failure leaves nothing half-done.
SET LOCAL citus.multi_shard_modify_mode = 'sequential';
-- The SQL functions are created on the workers in no particular order: one
-- that calls another not created there yet must not be refused. (SET LOCAL
-- reaches the workers' side of this transaction only with
-- propagate_set_commands = local.)
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL check_function_bodies = off;
-- Citus refuses to distribute a table with triggers unless told that their
-- functions are fit to run on every shard. Ours are: audit._stamp_entry()
-- sets id, time, txid and origin from the node it runs on (a worker's own
-- transaction counter and system identifier: each worker is an origin of
-- its own, docs/sealing.md), and audit._refuse_change() refuses, wherever
-- it runs. The setting is needed only while distributing (and for any later
-- CREATE TRIGGER on these tables); it changes nothing at run time.
SET LOCAL citus.enable_unsafe_triggers = on;

-- 1. The primary key. A distributed table's unique constraints must include
-- its distribution column: Citus checks uniqueness one shard at a time, and
-- only a key that includes company_id keeps two equal keys in one shard.
-- (company_id, id) is unique exactly when id is: ids are random UUIDs the
-- stamp draws on each node, and a verifier counts rows per id, whatever the
-- key. blocks_pkey is (company_id, block_no) already.
ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_pkey;
ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (company_id, id);

-- 1b. The stamp. On a plain PostgreSQL audit_definer may insert every column
-- of the log but the stamp's, which the columns' defaults fill, and the stamp
-- trigger spares its inserts (0020_audit_logs.sql, 0030_immutability.sql).
-- Citus copies a table's privileges to its shards and to the workers' copies
-- of it, but not privileges on columns (commands/grant.c: "column level
-- privileges are not supported"): audit_definer would have no INSERT on a
-- shard. Here it has INSERT on the whole table, as before 0014, and the
-- trigger stamps every insert, its own included, whatever it names. Nor do
-- the defaults stay: Citus evaluates a default it sends on, and the
-- cluster's identity, a field of a record, it cannot send ("input of
-- anonymous composite types is not implemented"); the trigger sets all four.
ALTER TABLE audit.audit_logs
    ALTER COLUMN txid DROP DEFAULT,
    ALTER COLUMN origin DROP DEFAULT;
REVOKE INSERT (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    ON audit.audit_logs FROM audit_definer;
GRANT INSERT ON audit.audit_logs TO audit_definer;
DROP TRIGGER audit_logs_stamp ON audit.audit_logs;
CREATE TRIGGER audit_logs_stamp
    BEFORE INSERT ON audit.audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry();
COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id, created_at, txid and origin of every new entry, on the shard''s node, but in replication sessions, which keep the publisher''s.';

-- 2. The tenant policies. On a plain PostgreSQL they read the pinned
-- companies once per query, with an uncorrelated subquery
-- ((SELECT audit._pinned_companies())); Citus refuses subqueries in the
-- policies of a distributed table. The same condition calls the function
-- directly: evaluated per row that passes the first condition, on the
-- worker, against its copy of audit.tenant_logins (a reference table). It
-- is STABLE and the rows it sees are one company's.
DROP POLICY audit_logs_tenant_reader ON audit.audit_logs;
CREATE POLICY audit_logs_tenant_reader ON audit.audit_logs FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY (audit._pinned_companies()), true));
DROP POLICY blocks_tenant_reader ON audit.blocks;
CREATE POLICY blocks_tenant_reader ON audit.blocks FOR SELECT TO audit_tenant_reader
    USING (company_id = NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
           AND COALESCE(NULLIF(pg_catalog.current_setting('audit.company_id', true), '')::uuid
                        = ANY (audit._pinned_companies()), true));
-- On a worker, the function reads the reference table audit.tenant_logins,
-- a distributed query inside the query on a shard, which Citus refuses
-- unless told: the table has a copy on every node, read locally, so the
-- nesting cannot read anything inconsistent.
ALTER FUNCTION audit._pinned_companies() SET citus.allow_nested_distributed_execution = on;
COMMENT ON POLICY audit_logs_tenant_reader ON audit.audit_logs IS
    'audit_tenant_reader reads the entries of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies. (Citus: the pins are read per row, not by a subquery, which Citus refuses in the policies of distributed tables.)';
COMMENT ON POLICY blocks_tenant_reader ON audit.blocks IS
    'audit_tenant_reader reads the blocks of the company in its transaction''s context, and no other; a pinned login, only if it is one of its companies. (Citus: the pins are read per row, not by a subquery, which Citus refuses in the policies of distributed tables.)';

-- 3. Who holds the log's roles. The migrations ran with DDL propagation off,
-- so the grants they made (audit_admin to the installing login, ...) exist
-- on the coordinator only, while Citus creates the roles themselves on the
-- workers as it needs them. Granted again here, each grant goes to every
-- node; a pin, strict mode and the writes a login sends to a worker are
-- checked there against these memberships.
DO $grants$
DECLARE
    membership pg_catalog.record;
BEGIN
    FOR membership IN
        SELECT r.rolname AS role_name, m.rolname AS member_name, a.admin_option
        FROM pg_catalog.pg_auth_members a
        JOIN pg_catalog.pg_roles r ON r.oid = a.roleid
        JOIN pg_catalog.pg_roles m ON m.oid = a.member
        WHERE r.rolname IN ('audit_owner', 'audit_definer', 'audit_writer', 'audit_reader',
                            'audit_tenant_reader', 'audit_admin')
    LOOP
        EXECUTE pg_catalog.format('GRANT %I TO %I%s', membership.role_name, membership.member_name,
                                  CASE WHEN membership.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END);
    END LOOP;
END $grants$;

-- 4. The configuration that writers and readers consult where they run: a
-- copy on every node. Their row-level security and privileges go with them.
-- (regrole values travel as role names, which every node resolves to its
-- own oid for the same role: Citus propagates roles.)
SELECT pg_catalog.create_reference_table('audit.strict_mode');
SELECT pg_catalog.create_reference_table('audit.tenant_logins');

-- 5. The log: a company's entries and its blocks on the same node.
-- Entries recorded before the server became a coordinator are copied into
-- the shards by inserts on the workers, where the stamp trigger exists
-- already: it would give each a new id, time, txid and origin, and the
-- blocks that sealed them would name entries that no longer exist. The
-- copy keeps each entry as it was stamped (and its origin the coordinator's,
-- whose counter gave out its txid); the trigger is enabled again, on every
-- shard, before this transaction ends.
ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_stamp;
SELECT pg_catalog.create_distributed_table('audit.audit_logs', 'company_id');
ALTER TABLE audit.audit_logs ENABLE TRIGGER audit_logs_stamp;
SELECT pg_catalog.create_distributed_table('audit.blocks', 'company_id', colocate_with => 'audit.audit_logs');

-- 6. Every function of the schema, on every node. A function body's calls are
-- no dependency Citus would follow: the whole schema goes, so that a function
-- running on a worker finds there every function it calls. Recording is
-- delegated to the company's worker by 0020_recording.sql. Citus creates a
-- function that a table needs (a trigger's) on the workers between its own
-- SET LOCAL check_function_bodies TO off and a RESET, which ends the
-- SET LOCAL above there as well: set again.
SET LOCAL check_function_bodies = off;
SELECT pg_catalog.count(pg_catalog.create_distributed_function(p.oid::pg_catalog.regprocedure))
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace;

-- Citus creates each function on the workers with PostgreSQL's default
-- EXECUTE for PUBLIC, then the grants it finds here: take PUBLIC's back, as
-- sql/0090_grants.sql does on the coordinator (a login connecting to a
-- worker directly gets no more than on the coordinator). The REVOKE is
-- propagated to every node.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
-- A function replaced earlier in this transaction (0005_role_names.sql) is
-- created on the workers without any of its grants (citus 13.0.5): grant
-- again, on every node, each EXECUTE the coordinator's functions carry. A
-- grant a node has already changes nothing there; the grantor is the
-- function's owner, as on the coordinator.
DO $function_grants$
DECLARE
    grant_row pg_catalog.record;
BEGIN
    FOR grant_row IN
        SELECT p.oid::pg_catalog.regprocedure AS function, g.grantee::pg_catalog.regrole AS grantee
        FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) g
        WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace
          AND g.grantee <> 0 AND g.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', grant_row.function, grant_row.grantee);
    END LOOP;
END $function_grants$;
