"""The ceiling of recording through a function: what the two protections record_audit() keeps cost.

A writer may not insert into the log, only a SECURITY DEFINER function may (the trust boundary),
and the database, not the writer, chooses each entry's id, time, txid and origin (the stamp trigger,
audit._stamp_entry()). Both are measured on a copy of the log's table (columns, defaults,
constraints, indexes) with no trigger but the stamp: a plain INSERT into it, and a SECURITY DEFINER
function with a pinned search_path that does nothing but that INSERT. audit.record_audit() is that
function plus its input checks and the context.
"""

from __future__ import annotations

import psycopg

from audit_py.server import ThrowawayServer

PREPARE_SQL = """
CREATE TABLE bench_stamped (LIKE audit.audit_logs INCLUDING ALL);
CREATE TRIGGER bench_stamped_stamp BEFORE INSERT ON bench_stamped
    FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry();
CREATE FUNCTION bench_definer_insert(company_id uuid, action text, entity text, entity_id uuid, details jsonb,
                                     user_id uuid, franchise_id uuid)
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_id pg_catalog.uuid;
BEGIN
    INSERT INTO public.bench_stamped (company_id, franchise_id, user_id, action, entity, entity_id, details)
    VALUES (bench_definer_insert.company_id, bench_definer_insert.franchise_id, bench_definer_insert.user_id,
            bench_definer_insert.action, bench_definer_insert.entity, bench_definer_insert.entity_id,
            bench_definer_insert.details)
    RETURNING bench_stamped.id INTO new_id;
    RETURN new_id;
END;
$$;
"""


def prepare(server: ThrowawayServer) -> None:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        conn.execute(PREPARE_SQL)


def pgbench_scripts(record_audit: str, plain_insert: str) -> dict[str, str]:
    """record_audit(), the plain INSERT, the ceiling (definer function, stamped), the stamped INSERT: in
    this order, so that run.ceilings() reads each after the second against it."""
    return {
        "audit.record_audit()": record_audit,
        "plain INSERT": plain_insert,
        "definer function's INSERT, stamped": record_audit.replace("audit.record_audit(", "bench_definer_insert("),
        "plain INSERT, stamped": plain_insert.replace("INTO bench_plain ", "INTO bench_stamped "),
    }
