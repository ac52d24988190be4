"""Change tracking against the same table untracked: single-row UPDATEs from pgbench, and one bulk UPDATE.

Both sides are the same invoices table, as an ERP holds it: a uuid key, a
unique number per company, indexes on status, customer and due date.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

import stripped  # bench/stripped.py
from audit_py.server import ThrowawayServer

ROWS = 100_000
TABLES = {"tracked": "bench_invoices_tracked", "untracked": "bench_invoices_untracked",
          "a fixed entry per row": "bench_invoices_fixed"}
# Tracking with protections taken away (bench/stripped.py): the ceiling of a trigger function generated
# per tracked table, which could drop the catalog query, and what the settings and context add.
STRIPPED = {f"tracked {variant}": f"bench_invoices_{number}" for number, variant in enumerate(
    ["without its catalog query", "without its catalog query, settings and context"])}
TABLES.update(STRIPPED)

# The ceiling of a statement trigger that records: the same transition tables, and for each row an entry
# that costs nothing to make (no catalog lookup, no JSON, no diff, no context), stamped as tracking's are:
# it runs as audit_definer, whose inserts the columns' defaults stamp (0014.cheaper-entries).
FIXED_ENTRY_SQL = """
CREATE FUNCTION bench_fixed_entry() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)
    SELECT n.company_id, 'UPDATE_INVOICE', 'invoice', n.id, '{}' FROM audit_new n;
    RETURN NULL;
END $$;
ALTER FUNCTION bench_fixed_entry() OWNER TO audit_definer;
CREATE TRIGGER bench_fixed_entry AFTER UPDATE ON bench_invoices_fixed REFERENCING OLD TABLE AS audit_old
    NEW TABLE AS audit_new FOR EACH STATEMENT EXECUTE FUNCTION bench_fixed_entry();
"""

TABLE_SQL = """
CREATE TABLE {table} (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id   uuid NOT NULL,
    franchise_id uuid,
    customer_id  uuid NOT NULL,
    number       bigint NOT NULL,
    status       text NOT NULL,
    amount       numeric(12, 2) NOT NULL,
    currency     text NOT NULL,
    issued_on    date NOT NULL,
    due_on       date NOT NULL,
    notes        text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, number)
);
CREATE INDEX ON {table} (company_id, status);
CREATE INDEX ON {table} (customer_id);
CREATE INDEX ON {table} (due_on);
INSERT INTO {table} (company_id, franchise_id, customer_id, number, status, amount, currency, issued_on, due_on)
SELECT ('00000000-0000-0000-0000-' || lpad((n % 50 + 1)::text, 12, '0'))::uuid, gen_random_uuid(),
       gen_random_uuid(), n / 50, 'open', (n % 100000) / 100.0, 'EUR',
       date '2026-01-01' + n % 300, date '2026-02-01' + n % 300
FROM generate_series(0, {rows} - 1) n
"""

# One invoice edited per transaction: the HOT update an ERP makes all day.
PGBENCH_UPDATE = """\\set company random(1, 50)
\\set number random(0, {last})
UPDATE {table} SET amount = amount + 1, updated_at = now()
WHERE company_id = ('00000000-0000-0000-0000-' || lpad(:company::text, 12, '0'))::uuid AND number = :number;
"""

# Every invoice changes status: a nightly job's bulk statement, which touches every index.
BULK_UPDATE = ("UPDATE {table} SET status = CASE status WHEN 'open' THEN 'overdue' ELSE 'open' END,"
               " updated_at = now()")


def prepare(server: ThrowawayServer) -> None:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        for table in TABLES.values():
            conn.execute(TABLE_SQL.format(table=table, rows=ROWS))
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("SELECT audit.enable_tracking(%s, 'invoice')", (TABLES["tracked"],))
        conn.execute(FIXED_ENTRY_SQL)
        for side, table in STRIPPED.items():
            stripped.track_updates_with(conn, table, stripped.create(conn, side.removeprefix("tracked ")))


def pgbench_scripts() -> dict[str, str]:
    return {f"UPDATE, table {side}": PGBENCH_UPDATE.format(table=table, last=ROWS // 50 - 1)
            for side, table in TABLES.items()}


def bulk_sides(server: ThrowawayServer) -> dict[str, Callable[[], float]]:
    """Rows updated per second by one UPDATE of all ROWS rows, committed; each table vacuumed first."""
    def updating(table: str) -> Callable[[], float]:
        def run() -> float:
            with psycopg.connect(server.conninfo, autocommit=True) as conn:
                conn.execute(f"VACUUM {table}")
                began = time.perf_counter()
                with conn.transaction():
                    updated = conn.execute(BULK_UPDATE.format(table=table)).rowcount
                elapsed = time.perf_counter() - began
            assert updated == ROWS
            return updated / elapsed

        return run

    return {f"{ROWS:,}-row UPDATE, table {side}": updating(table) for side, table in TABLES.items()}
