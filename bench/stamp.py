"""Backend CPU time per entry of the stamp, trigger against column defaults (0014.cheaper-entries).

Copies of the log's table (columns, defaults, constraints, indexes) without its triggers, each filled by
one INSERT ... SELECT of 20,000 rows per round: bare (the copy's own defaults), stamped by the trigger
(audit._stamp_entry(), as every role's insert but audit_definer's is), and stamped by the log's
defaults (as audit_definer's are). CPU time is the server backend's, read from /proc: steady to a few
percent where wall-clock time on a shared machine is not. Run: .venv/bin/python bench/stamp.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import sys

import psycopg

from audit_py import migrate
from audit_py.server import throwaway_server

ROWS = 20_000
SIDES = {
    "no stamp": "",
    "the stamp trigger": "CREATE TRIGGER stamp BEFORE INSERT ON {table} FOR EACH ROW"
                         " EXECUTE FUNCTION audit._stamp_entry()",
    "the stamp's defaults": "ALTER TABLE {table} ALTER id SET DEFAULT audit._new_entry_id(),"
                            " ALTER txid SET DEFAULT pg_catalog.txid_current(),"
                            " ALTER origin SET DEFAULT (pg_catalog.pg_control_system()).system_identifier",
}
INSERT = ("INSERT INTO {table} (company_id, action, entity, entity_id, details)"
          f" SELECT gen_random_uuid(), 'A', 'e', gen_random_uuid(), '{{{{}}}}' FROM generate_series(1, {ROWS})")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(rounds: int) -> None:
    with throwaway_server(fsync=False) as server:
        migrate(server.conninfo)
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            tables = {}
            for number, (side, setup) in enumerate(SIDES.items()):
                tables[side] = table = f"stamp_{number}"
                # The copy's defaults are those of the log before 0014: a random id, now().
                conn.execute(f"CREATE TABLE {table} (LIKE audit.audit_logs INCLUDING ALL)")
                conn.execute(f"ALTER TABLE {table} ALTER id SET DEFAULT gen_random_uuid(),"
                             " ALTER txid DROP DEFAULT, ALTER origin DROP DEFAULT")
                if setup:
                    conn.execute(setup.format(table=table))
            pid = conn.info.backend_pid
            micros: dict[str, list[float]] = {side: [] for side in SIDES}
            for _ in range(rounds):
                for side, table in tables.items():
                    before = cpu_seconds(pid)
                    conn.execute(INSERT.format(table=table))
                    micros[side].append((cpu_seconds(pid) - before) / ROWS * 1e6)
                    conn.execute(f"TRUNCATE {table}")
    print(f"Backend CPU per entry, INSERT ... SELECT of {ROWS:,} rows, {rounds} rounds (median, range):")
    for side, values in micros.items():
        print(f"  {side:22} {statistics.median(values):5.1f} µs ({min(values):.1f} to {max(values):.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
