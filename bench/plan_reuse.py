"""A bulk UPDATE of a tracked table in a session whose first tracked UPDATE touched one row, against the
same UPDATE in a fresh session: as 0015.tracking-plans has it, and as before it.

The plan of tracking's INSERT is kept for the session, made with the sizes of the statement that first
ran it. Before 0015 a single-row statement's plan paired old and new rows by a nested loop, and a bulk
UPDATE after it took time in the square of its rows. The function as before 0015 is read from the
migration's rollback and installed beside the real one (bench/stripped.py). Run:
.venv/bin/python bench/plan_reuse.py [rows ...]   (default 1000 2000 4000)
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import psycopg

import stripped  # bench/stripped.py
import tracking  # bench/tracking.py
from audit_py import migrate
from audit_py.server import throwaway_server

ROLLBACK = Path(__file__).parent.parent / "migrations" / "0015.tracking-plans.rollback.sql"
BEFORE = "public.bench_track_before_0015"


def _define_before(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    match = re.search(r"CREATE OR REPLACE FUNCTION audit\._track_changes\(\).*?\n\$\$;\n", ROLLBACK.read_text(), re.S)
    assert match, "0015's rollback no longer restores audit._track_changes()"
    stripped.install_copy(conn, match.group(0), BEFORE)


def _bulk_seconds(conninfo: str, table: str, single_row_first: bool) -> float:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET audit.user_id = '00000000-0000-0000-0000-000000000001'")
        if single_row_first:
            conn.execute(f"UPDATE {table} SET amount = amount + 1 WHERE id = (SELECT id FROM {table} LIMIT 1)")
        began = time.perf_counter()
        conn.execute(f"UPDATE {table} SET status = status || '+'")
        return time.perf_counter() - began


def main(sizes: list[int]) -> None:
    with throwaway_server(fsync=False) as server:
        migrate(server.conninfo)
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            _define_before(conn)
        print("Seconds for one UPDATE of every row of a tracked table: in a fresh session, and in one whose"
              " first tracked UPDATE touched one row")
        for rows in sizes:
            for side, function in (("since 0015", None), ("before 0015", BEFORE)):
                table = f"reuse_{rows}_{side.split()[0]}"
                with psycopg.connect(server.conninfo, autocommit=True) as conn:
                    conn.execute(tracking.TABLE_SQL.format(table=table, rows=rows))
                    if function is None:
                        conn.execute("SELECT audit.enable_tracking(%s, 'invoice')", (table,))
                    else:
                        stripped.track_updates_with(conn, table, function)
                fresh = _bulk_seconds(server.conninfo, table, single_row_first=False)
                after_one = _bulk_seconds(server.conninfo, table, single_row_first=True)
                print(f"  {rows:>7,} rows, {side:12} fresh {fresh:8.3f} s"
                      f"   after a single-row UPDATE {after_one:8.3f} s")


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [1000, 2000, 4000])
