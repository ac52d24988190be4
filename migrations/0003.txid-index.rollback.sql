-- Undoes 0003.txid-index.
-- transactional: false
-- yoyo runs this file outside a transaction, as CONCURRENTLY needs:
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction

SET audit.allow_ddl = on;
SET lock_timeout = '5s';
-- Building over a large log takes a while; writers go on meanwhile.
SET statement_timeout = '30min';

DROP INDEX CONCURRENTLY IF EXISTS audit.audit_logs_txid_brin;

RESET audit.allow_ddl;
RESET lock_timeout;
RESET statement_timeout;
