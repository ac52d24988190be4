-- Undoes 0002.tamper-evidence. Dropping is what a rollback is for:
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-column

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

-- BEGIN UNINSTALL CHECK (the same in every rollback: tests/test_uninstall.py)
-- Each rollback may be the first step of an uninstall that ends in 0001's,
-- which drops the log. So each step refuses, before it changes anything,
-- what any later step would destroy unasked or could not finish: a log with
-- entries needs audit.destroy_entries = on; tracking stops only by its
-- tables' owners; the guard's event triggers go only with a superuser.
DO $uninstall$
DECLARE
    tracked pg_catalog.regclass;
BEGIN
    IF pg_catalog.current_setting('audit.destroy_entries', true) IS DISTINCT FROM 'on'
       AND EXISTS (SELECT FROM audit.audit_logs) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations would destroy its entries'
            USING ERRCODE = 'AU009',
                  HINT = 'Export them first (audit-py export), then confirm with the setting audit.destroy_entries = on '
                         '(audit-py uninstall --destroy-entries, or PGOPTIONS=''-c audit.destroy_entries=on'' for yoyo).';
    END IF;
    IF pg_catalog.to_regprocedure('audit._track_changes()') IS NOT NULL THEN
        SELECT t.tgrelid::pg_catalog.regclass INTO tracked
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        WHERE t.tgfoid = pg_catalog.to_regprocedure('audit._track_changes()')
          AND NOT pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')
        LIMIT 1;
        IF tracked IS NOT NULL THEN
            RAISE EXCEPTION 'rolling back the audit log''s migrations stops tracking %, which this login does not own', tracked
                USING ERRCODE = 'AU009',
                      HINT = pg_catalog.format('Have its owner run SELECT audit.disable_tracking(%L) first.', tracked);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname IN ('audit_refuse_ddl', 'audit_refuse_drop'))
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'rolling back the audit log''s migrations drops the DDL guard''s event triggers, which needs a superuser'
            USING ERRCODE = 'AU009';
    END IF;
END
$uninstall$;
-- END UNINSTALL CHECK

DROP FUNCTION audit.digest();
DROP FUNCTION audit.verify(uuid);
DROP FUNCTION audit._protection_problems();
DROP FUNCTION audit.seal();
DROP TABLE audit.blocks;
DROP FUNCTION audit._block_hash(uuid, bigint, bigint, bigint, integer, bytea, bytea, timestamptz);
DROP FUNCTION audit._merkle_root(bytea[]);
DROP FUNCTION audit.entry_hash(audit.audit_logs);
DROP FUNCTION audit._micros(timestamptz);
DROP FUNCTION audit._opt_uuid_bytes(uuid);
DROP FUNCTION audit._str_bytes(text);

CREATE OR REPLACE FUNCTION audit._stamp_entry()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.id := pg_catalog.gen_random_uuid();
    NEW.created_at := pg_catalog.now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION audit._stamp_entry() IS
    'Trigger function: sets id and created_at of a new entry, whatever the insert supplied.';
COMMENT ON TRIGGER audit_logs_stamp ON audit.audit_logs IS
    'Sets id and created_at of every new entry (ENABLE ALWAYS).';

ALTER TABLE audit.audit_logs DROP COLUMN txid;
