"""Backend CPU time of tracking, with its protections taken away one at a time (bench/stripped.py).

Invoices tables as bench/tracking.py makes them: untracked, tracked, tracked through each variant of
bench/stripped.py, the fixed-entry statement trigger of the ceiling, and the same entry written by a
row-level trigger. Per single-row UPDATE (each its own
transaction, as pgbench's are) and per row of one UPDATE of every row. CPU time is the server
backend's, read from /proc: steady to a few percent where wall-clock time on a shared machine is not;
fsync is off, since waiting for the disk costs no CPU. Run: .venv/bin/python bench/tracking_cost.py [rounds]
"""

from __future__ import annotations

import statistics
import sys

import psycopg

import stripped  # bench/stripped.py
import tracking  # bench/tracking.py
from audit_py import migrate
from audit_py.server import throwaway_server
from stamp import cpu_seconds  # bench/stamp.py

# The ceiling of a row-level path for single-row statements: a trigger FOR EACH ROW, which needs no
# transition tables, writing the same fixed entry.
ROW_LEVEL = "a fixed entry per row, by a row-level trigger"
ROW_LEVEL_SQL = """
CREATE FUNCTION bench_fixed_row_entry() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)
    VALUES (NEW.company_id, 'UPDATE_INVOICE', 'invoice', NEW.id, '{{}}');
    RETURN NULL;
END $$;
ALTER FUNCTION bench_fixed_row_entry() OWNER TO audit_definer;
CREATE TRIGGER bench_fixed_row_entry AFTER UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION bench_fixed_row_entry();
"""
ROWS = 20_000  # per table; the bulk UPDATE changes them all
STATEMENTS = 2_000  # single-row UPDATEs per side and round


def prepare(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    """The tables, by side."""
    tables = {}
    sides = ["untracked", "tracked", *stripped.VARIANTS, "a fixed entry per row", ROW_LEVEL]
    for number, side in enumerate(sides):
        tables[side] = table = f"cost_invoices_{number}"
        conn.execute(tracking.TABLE_SQL.format(table=table, rows=ROWS))
        conn.execute(f"VACUUM ANALYZE {table}")
        if side == "tracked":
            conn.execute("SELECT audit.enable_tracking(%s, 'invoice')", (table,))
        elif side in stripped.VARIANTS:
            stripped.track_updates_with(conn, table, stripped.create(conn, side))
    conn.execute(tracking.FIXED_ENTRY_SQL.replace(tracking.TABLES["a fixed entry per row"],
                                                  tables["a fixed entry per row"]))
    conn.execute(ROW_LEVEL_SQL.format(table=tables[ROW_LEVEL]))
    return tables


def _single_row_micros(conn: psycopg.Connection[tuple[object, ...]], table: str, pid: int) -> float:
    keys = [row[0] for row in conn.execute(f"SELECT id FROM {table} ORDER BY random() LIMIT {STATEMENTS}")]
    update = f"UPDATE {table} SET amount = amount + 1, updated_at = now() WHERE id = %s"
    began = cpu_seconds(pid)
    for key in keys:
        conn.execute(update, (key,), prepare=True)
    return (cpu_seconds(pid) - began) / STATEMENTS * 1e6


def main(rounds: int) -> None:
    with throwaway_server(fsync=False) as server:
        migrate(server.conninfo)
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            tables = prepare(conn)
            conn.execute("SET audit.user_id = '00000000-0000-0000-0000-000000000001'")
            pid = conn.info.backend_pid
            single: dict[str, list[float]] = {side: [] for side in tables}
            bulk: dict[str, list[float]] = {side: [] for side in tables}
            # The single-row rounds first: a table a bulk UPDATE left with a dead version of every row
            # costs a single-row UPDATE more, tracked or not, and would blur the sides' differences.
            for _ in range(rounds):
                for side, table in tables.items():
                    single[side].append(_single_row_micros(conn, table, pid))
            for number in range(rounds):
                for side, table in tables.items():
                    conn.execute(f"VACUUM {table}")
                    began = cpu_seconds(pid)
                    conn.execute(f"UPDATE {table} SET status = 'status {number}', updated_at = now()")
                    bulk[side].append((cpu_seconds(pid) - began) / ROWS * 1e6)
            counted = conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone()
    tracked = (len(tables) - 1) * rounds * (STATEMENTS + ROWS)
    assert counted is not None and counted[0] == tracked, f"{counted} entries, not {tracked}: a side recorded wrong"
    print(f"Backend CPU, {rounds} rounds (median, range): a single-row UPDATE per transaction ({STATEMENTS:,} a round),"
          f" and per row of one UPDATE of {ROWS:,} rows")
    for side in tables:
        print(f"  {side:52} {_figure(single[side], 'µs a statement')}   {_figure(bulk[side], 'µs a row')}")


def _figure(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):6.1f} {unit} ({min(values):.1f} to {max(values):.1f})"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
