-- Undoes 0002.tamper-evidence. Dropping is what a rollback is for:
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-column

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
SET LOCAL audit.allow_ddl = on;

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
