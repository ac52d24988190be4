-- After every run that applied a migration (yoyo's post-apply hook): an index
-- of the log left invalid by a concurrent build that failed (a lock timeout,
-- a cancel) is rebuilt here, so that a rerun which found it already there
-- (CREATE INDEX CONCURRENTLY IF NOT EXISTS) or renamed it into place leaves
-- no invalid index behind. REINDEX locks out writers while it runs, and runs
-- only where an index is broken; the run fails if it cannot finish.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = 0;
-- The DDL guard of superuser installs lifts for the transaction its value names, this one.
DO $lift$ BEGIN PERFORM pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true); END $lift$;
DO $take$
BEGIN
    IF NOT (CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000
                 THEN pg_catalog.pg_has_role(current_user, 'audit_owner', 'SET')
                 ELSE pg_catalog.pg_has_role(current_user, 'audit_owner', 'MEMBER') END) THEN
        EXECUTE pg_catalog.format('GRANT audit_owner TO %I', current_user);
        PERFORM pg_catalog.set_config('audit.owner_taken', 'on', true);
    END IF;
END $take$;
SET LOCAL ROLE audit_owner;

DO $repair$
DECLARE
    broken pg_catalog.regclass;
BEGIN
    FOR broken IN
        SELECT i.indexrelid::pg_catalog.regclass
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'audit'::pg_catalog.regnamespace AND NOT (i.indisvalid AND i.indisready)
    LOOP
        RAISE NOTICE 'audit: index % was left invalid by an interrupted build; rebuilding it', broken;
        EXECUTE pg_catalog.format('REINDEX INDEX %s', broken);
    END LOOP;
END
$repair$;

RESET ROLE;
DO $give$
BEGIN
    IF pg_catalog.current_setting('audit.owner_taken', true) = 'on' THEN
        EXECUTE pg_catalog.format('REVOKE audit_owner FROM %I', current_user);
    END IF;
END $give$;
