-- Schema audit, its tables, views, columns, constraints, indexes and types: exactly these, so that an
-- object added or removed fails here. Functions are listed in 30_functions.sql, triggers in
-- 20_triggers.sql, privileges and row-level security in 40_privileges.sql.
-- One transaction, rolled back: it leaves nothing behind.
BEGIN;
-- pgTAP's schema, then pg_catalog: the output of pg_get_indexdef() and of regtype does not depend on
-- the caller's search_path.
DO $$ BEGIN PERFORM pg_catalog.set_config('search_path', (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_extension e WHERE e.extname = 'pgtap') || ', pg_catalog', true); END $$;
SET LOCAL client_min_messages = warning;
SELECT no_plan();

SELECT has_schema('audit');
-- These two need audit_reader's EXECUTE (a superuser has it), hence run from strings, when allowed.
SELECT CASE WHEN has_function_privilege('audit.schema_version()', 'EXECUTE')
            THEN results_eq('SELECT audit.schema_version()', 'VALUES (15)',
                            'this suite describes schema version 15 (migration 0015.tracking-plans)')
            ELSE skip('audit.schema_version() needs audit_reader (or a superuser)') END;
SELECT CASE WHEN has_function_privilege('audit._protection_problems()', 'EXECUTE')
            THEN is_empty('SELECT * FROM audit._protection_problems()',
                          'audit._protection_problems() finds nothing: the protection surface is a fresh install''s')
            ELSE skip('audit._protection_problems() needs audit_reader (or a superuser)') END;

-- The relations: exactly these.
SELECT tables_are('audit', ARRAY['audit_logs', 'blocks', 'seal_lock', 'strict_mode', 'tenant_logins']);
SELECT views_are('audit', ARRAY['audit_new', 'audit_old', 'tracked_tables']);
SELECT materialized_views_are('audit', '{}'::name[]);
SELECT sequences_are('audit', '{}'::name[]);
SELECT foreign_tables_are('audit', '{}'::name[]);
-- Types of their own (enums, domains, composite types); a table's row type is the table's.
SELECT types_are('audit', '{page_entry}'::name[]);

-- Each table's columns, in order, with their type, NOT NULL and default.
SELECT results_eq(
    format($$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid) COLLATE "default"
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = %L::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum$$, t.name),
    t.columns,
    t.name || ' has its columns, in order, with their types, NOT NULL and defaults')
FROM (VALUES
    ('audit.audit_logs', $$VALUES
        -- The stamp, for audit_definer's inserts (sql/0020_audit_logs.sql): a version 7 id, the
        -- transaction, the cluster.
        ('id', 'uuid', true, 'audit._new_entry_id()'),
        ('company_id', 'uuid', true, NULL::text),
        ('franchise_id', 'uuid', false, NULL),
        ('user_id', 'uuid', false, NULL),
        ('action', 'text', true, NULL),
        ('entity', 'text', true, NULL),
        ('entity_id', 'uuid', true, NULL),
        ('details', 'jsonb', true, NULL),
        ('created_at', 'timestamp with time zone', true, 'now()'),
        ('txid', 'bigint', false, 'txid_current()'),
        ('context', 'jsonb', true, '''{}''::jsonb'),
        ('origin', 'bigint', false, '(pg_control_system()).system_identifier')$$),
    ('audit.blocks', $$VALUES
        ('company_id', 'uuid', true, NULL::text),
        ('block_no', 'bigint', true, NULL),
        ('xid_from', 'bigint', true, NULL),
        ('xid_to', 'bigint', true, NULL),
        ('entry_ids', 'uuid[]', true, NULL),
        ('entry_hashes', 'bytea[]', true, NULL),
        ('merkle_root', 'bytea', true, NULL),
        ('prev_hash', 'bytea', true, NULL),
        ('block_hash', 'bytea', true, NULL),
        ('sealed_at', 'timestamp with time zone', true, 'now()'),
        ('format', 'bigint', true, NULL),
        ('origin', 'bigint', false, NULL)$$),
    ('audit.seal_lock', $$VALUES
        ('seal_count', 'bigint', true, NULL::text),
        ('origin', 'bigint', false, NULL)$$),
    ('audit.strict_mode', $$VALUES
        ('login_role', 'regrole', false, NULL::text),
        ('enabled_at', 'timestamp with time zone', true, 'now()'),
        ('enabled_by', 'name', true, 'SESSION_USER')$$),
    ('audit.tenant_logins', $$VALUES
        ('login_role', 'regrole', true, NULL::text),
        ('company_id', 'uuid', true, NULL)$$),
    ('audit.tracked_tables', $$VALUES
        ('table_name', 'regclass', false, NULL::text),
        ('entity', 'text', false, NULL),
        ('exclude_columns', 'text[]', false, NULL),
        ('triggers_in_place', 'boolean', false, NULL)$$),
    ('audit.audit_new', $$VALUES ('missing', 'integer', false, NULL::text)$$),
    ('audit.audit_old', $$VALUES ('missing', 'integer', false, NULL::text)$$)
) AS t(name, columns);

-- Constraints: exactly these, each of its kind (p primary key, c check).
SELECT set_eq(
    $$SELECT conrelid::regclass::text, conname::text COLLATE "default", contype::text FROM pg_constraint
      WHERE connamespace = 'audit'::regnamespace$$,
    $$VALUES ('audit.audit_logs', 'audit_logs_pkey', 'p'),
             ('audit.audit_logs', 'audit_logs_action_not_blank', 'c'),
             ('audit.audit_logs', 'audit_logs_entity_not_blank', 'c'),
             ('audit.audit_logs', 'audit_logs_details_is_object', 'c'),
             ('audit.audit_logs', 'audit_logs_context_is_object', 'c'),
             ('audit.audit_logs', 'audit_logs_details_printable', 'c'),
             ('audit.audit_logs', 'audit_logs_context_printable', 'c'),
             ('audit.blocks', 'blocks_pkey', 'p'),
             ('audit.blocks', 'blocks_range_is_ordered', 'c'),
             ('audit.blocks', 'blocks_one_hash_per_entry', 'c'),
             ('audit.tenant_logins', 'tenant_logins_pkey', 'p')$$,
    'schema audit has exactly its constraints');
SELECT is_empty(
    $$SELECT conrelid::regclass, conname FROM pg_constraint
      WHERE connamespace = 'audit'::regnamespace AND contype = 'c' AND NOT convalidated$$,
    'every check constraint of schema audit is validated');

-- Indexes: exactly these, each as defined, and each valid (a failed CONCURRENTLY build leaves one invalid).
SELECT indexes_are('audit', 'audit_logs', ARRAY['audit_logs_pkey', 'audit_idx', 'audit_logs_company_idx',
    'audit_logs_user_idx', 'audit_logs_entity_idx', 'audit_logs_txid_brin', 'audit_logs_origin_txid_idx']);
SELECT indexes_are('audit', 'blocks', ARRAY['blocks_pkey', 'blocks_xid_to_idx', 'blocks_origin_xid_to_idx']);
SELECT indexes_are('audit', 'seal_lock', ARRAY['seal_lock_one_row']);
SELECT indexes_are('audit', 'strict_mode', ARRAY['strict_mode_login_role_key']);
SELECT indexes_are('audit', 'tenant_logins', ARRAY['tenant_logins_pkey']);
SELECT is(pg_get_indexdef(to_regclass(i.name)), i.definition, i.name || ' is ' || i.definition)
FROM (VALUES
    ('audit.audit_logs_pkey', 'CREATE UNIQUE INDEX audit_logs_pkey ON audit.audit_logs USING btree (id)'),
    ('audit.audit_idx', 'CREATE INDEX audit_idx ON audit.audit_logs USING btree (company_id, franchise_id, created_at, id)'),
    ('audit.audit_logs_company_idx', 'CREATE INDEX audit_logs_company_idx ON audit.audit_logs USING btree (company_id, created_at, id)'),
    ('audit.audit_logs_user_idx', 'CREATE INDEX audit_logs_user_idx ON audit.audit_logs USING btree (company_id, user_id, created_at, id) WHERE (user_id IS NOT NULL)'),
    ('audit.audit_logs_entity_idx', 'CREATE INDEX audit_logs_entity_idx ON audit.audit_logs USING btree (entity, entity_id, created_at, id)'),
    ('audit.audit_logs_txid_brin', 'CREATE INDEX audit_logs_txid_brin ON audit.audit_logs USING brin (txid)'),
    ('audit.audit_logs_origin_txid_idx', 'CREATE INDEX audit_logs_origin_txid_idx ON audit.audit_logs USING btree (origin, txid) WHERE (origin IS NOT NULL)'),
    ('audit.blocks_pkey', 'CREATE UNIQUE INDEX blocks_pkey ON audit.blocks USING btree (company_id, block_no)'),
    ('audit.blocks_xid_to_idx', 'CREATE INDEX blocks_xid_to_idx ON audit.blocks USING btree (xid_to)'),
    ('audit.blocks_origin_xid_to_idx', 'CREATE INDEX blocks_origin_xid_to_idx ON audit.blocks USING btree (origin, xid_to)'),
    ('audit.seal_lock_one_row', 'CREATE UNIQUE INDEX seal_lock_one_row ON audit.seal_lock USING btree ((true))'),
    ('audit.strict_mode_login_role_key', 'CREATE UNIQUE INDEX strict_mode_login_role_key ON audit.strict_mode USING btree (COALESCE((login_role)::oid, (0)::oid))'),
    ('audit.tenant_logins_pkey', 'CREATE UNIQUE INDEX tenant_logins_pkey ON audit.tenant_logins USING btree (login_role, company_id)')
) AS i(name, definition);
SELECT is_empty(
    $$SELECT indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
      WHERE c.relnamespace = 'audit'::regnamespace AND NOT (i.indisvalid AND i.indisready AND i.indislive)$$,
    'every index of schema audit is valid');

-- What the tables are: plain, logged, not partitioned, inheriting from nothing and inherited by nothing,
-- with no rule; row-level security enabled where 40_privileges.sql gives policies (not FORCEd: the
-- owner's rights are bound by the triggers); replica identity FULL where there is no key.
SELECT results_eq(
    $$SELECT relname::text COLLATE "default", relkind::text, relpersistence::text, relrowsecurity, relforcerowsecurity, relreplident::text
      FROM pg_class WHERE relnamespace = 'audit'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname$$,
    $$VALUES ('audit_logs', 'r', 'p', true, false, 'd'),
             ('blocks', 'r', 'p', true, false, 'd'),
             ('seal_lock', 'r', 'p', true, false, 'f'),
             ('strict_mode', 'r', 'p', true, false, 'f'),
             ('tenant_logins', 'r', 'p', true, false, 'd')$$,
    'the tables of schema audit: plain, logged, row-level security on, replica identity as needed');
SELECT is_empty(
    $$SELECT inhrelid::regclass, inhparent::regclass FROM pg_inherits i
      WHERE inhrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)
         OR inhparent IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)$$,
    'no table of schema audit inherits or is inherited from, of any schema');
SELECT is_empty(
    $$SELECT ev_class::regclass, rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
      WHERE c.relnamespace = 'audit'::regnamespace AND r.rulename <> '_RETURN'$$,
    'no rule on a relation of schema audit');

-- The one row that gives audit.seal() its turn (row-level security shows it to audit_definer only).
SELECT CASE WHEN (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
            THEN results_eq('SELECT count(*) FROM audit.seal_lock', 'VALUES (1::bigint)', 'audit.seal_lock holds its one row')
            ELSE skip('reading audit.seal_lock needs a superuser') END;

SELECT * FROM finish();
ROLLBACK;
