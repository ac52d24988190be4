-- The BRIN index audit.seal() finds unsealed entries with. Built
-- CONCURRENTLY, which cannot run in a transaction: writers are not blocked
-- while it scans a large log.
-- depends: 0002.tamper-evidence
-- transactional: false
-- yoyo runs this file outside a transaction, as CONCURRENTLY needs:
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction

SET audit.allow_ddl = on;
SET lock_timeout = '5s';
-- Building over a large log takes a while; writers go on meanwhile.
SET statement_timeout = '30min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_txid_brin ON audit.audit_logs USING brin (txid);
COMMENT ON INDEX audit.audit_logs_txid_brin IS
    'Finds the entries of recent transactions, for audit.seal().';

RESET audit.allow_ddl;
RESET lock_timeout;
RESET statement_timeout;
