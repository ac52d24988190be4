-- The indexes of audit.history() and audit.search(), each ending in
-- (created_at, id), the order pages follow, so that no page sorts; audit_idx
-- gains id for the same reason (built anew, then swapped in). Built
-- CONCURRENTLY, which cannot run in a transaction: writers go on meanwhile.
-- depends: 0007.reading
-- transactional: false
-- yoyo runs this file outside a transaction, as CONCURRENTLY needs:
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction, renaming-object

SET audit.allow_ddl = on;
SET lock_timeout = '5s';
-- Building over a large log takes a while; writers go on meanwhile.
SET statement_timeout = '60min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_company_idx ON audit.audit_logs (company_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_user_idx ON audit.audit_logs (company_id, user_id, created_at, id)
    WHERE user_id IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_entity_idx ON audit.audit_logs (entity, entity_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_idx_with_id
    ON audit.audit_logs (company_id, franchise_id, created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS audit.audit_idx;
ALTER INDEX audit.audit_idx_with_id RENAME TO audit_idx;

COMMENT ON INDEX audit.audit_idx IS
    'Serves a company''s entries, per franchise, by time.';
COMMENT ON INDEX audit.audit_logs_company_idx IS
    'Serves a company''s entries, all franchises, by time.';
COMMENT ON INDEX audit.audit_logs_user_idx IS
    'Serves a company''s entries, per user, by time (entries with a user only).';
COMMENT ON INDEX audit.audit_logs_entity_idx IS
    'Serves the history of one entity, by time.';

RESET audit.allow_ddl;
RESET lock_timeout;
RESET statement_timeout;
