"""Recording on one PostgreSQL vs on a Citus cluster, where each call is sent to the company's worker.

One PostgreSQL 15 (audit-py migrate) and one Citus 13.0.5 cluster of a coordinator and two workers
(audit-py citus-install), all on this machine, fsync on. pgbench, 8 clients, one
`SELECT audit.record_audit(...)` per transaction for 50 companies, with constant arguments (Citus
delegates a call only when they are). The sides interleave over rounds; a ratio is the median of the
rounds' ratios. Three servers share the machine's cores in the distributed case: the ratio says what
the extra hop costs here, not what separate machines would give.

Needs the test setup (scripts/setup test: Citus is built by scripts/setup-citus):
    .venv/bin/python bench/citus.py [--rounds 5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit_py import migrate  # noqa: E402
from audit_py.server import ThrowawayServer, throwaway_server  # noqa: E402
from tests.citus.cluster import BINDIR, DATABASE, citus_cluster, install_log  # noqa: E402

CLIENTS = 8
SERVER_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
# Every argument a constant pgbench writes into the statement: uuids built from random numbers.
SCRIPT = """\\set company random(1, 50)
\\set entity random(1, 1000000000)
\\set amount random(1, 100000)
SELECT audit.record_audit(('00000000-0000-4000-8000-' || lpad(:company::text, 12, '0'))::uuid, 'CREATE_INVOICE',
       'invoice', ('00000000-0000-4000-8000-' || lpad(:entity::text, 12, '0'))::uuid,
       ('{"amount": ' || :amount || ', "currency": "EUR"}')::jsonb,
       ('00000000-0000-4000-8000-' || lpad((:entity % 500)::text, 12, '0'))::uuid);
"""


def pgbench(port: int, dbname: str, seconds: int, script: Path) -> float:
    result = subprocess.run(
        [str(BINDIR / "pgbench"), "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), "-f", str(script),
         "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", dbname],
        capture_output=True, text=True, check=True)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        local: ThrowawayServer = stack.enter_context(
            throwaway_server(fsync=True, bindir=BINDIR, settings=SERVER_SETTINGS))
        migrate(local.conninfo)
        cluster = stack.enter_context(citus_cluster(workers=2, fsync=True))
        install_log(cluster)
        script = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "record.sql"
        script.write_text(SCRIPT)
        sides = {"one PostgreSQL": (local.port, "postgres"),
                 "Citus, pushed down": (cluster.coordinator.port, DATABASE)}
        results: dict[str, list[float]] = {side: [] for side in sides}
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            for side in order:
                results[side].append(pgbench(*sides[side], args.seconds, script))
            print(f"round {round_no + 1}: " + ", ".join(f"{side} {results[side][-1]:,.0f} tps" for side in sides),
                  flush=True)
        ratios = [d / p for p, d in zip(results["one PostgreSQL"], results["Citus, pushed down"], strict=True)]
        print(f"one PostgreSQL: {statistics.median(results['one PostgreSQL']):,.0f} tps (median);"
              f" Citus, pushed down: {statistics.median(results['Citus, pushed down']):,.0f} tps (median);"
              f" ratio {statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
