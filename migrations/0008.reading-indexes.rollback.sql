-- Undoes 0008.reading-indexes: audit_idx goes back to (company_id,
-- franchise_id, created_at).
-- transactional: false
-- yoyo runs this file outside a transaction, as CONCURRENTLY needs:
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction, renaming-object

SET audit.allow_ddl = on;
SET lock_timeout = '5s';
SET statement_timeout = '60min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_idx_without_id ON audit.audit_logs (company_id, franchise_id, created_at);
DROP INDEX CONCURRENTLY IF EXISTS audit.audit_idx;
ALTER INDEX audit.audit_idx_without_id RENAME TO audit_idx;
COMMENT ON INDEX audit.audit_idx IS
    'Serves a company''s entries, per franchise, by time.';
DROP INDEX CONCURRENTLY IF EXISTS audit.audit_logs_entity_idx;
DROP INDEX CONCURRENTLY IF EXISTS audit.audit_logs_user_idx;
DROP INDEX CONCURRENTLY IF EXISTS audit.audit_logs_company_idx;

RESET audit.allow_ddl;
RESET lock_timeout;
RESET statement_timeout;
