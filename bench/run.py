"""Speed of the audit log against the same work without its protections.

Writes (record_audit, AuditService, record_many) against plain inserts and
COPY; writers while sealing against writers alone; sealing and verifying
against the bare hashing they cannot avoid (bench/sealing.py); updates of a
tracked table against the same table untracked (bench/tracking.py); reading
a log of 10 million entries, on a server of its own (bench/big_log.py); recording into a log of 20
million entries against an empty one (bench/scale.py). Each comparison
runs on one throwaway server with fsync on (as production runs), its sides
interleaved round by round, so that the ratios compare like with like on a
noisy machine. Run it with `scripts/bench`.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

import before  # bench/before.py
import big_log  # bench/big_log.py
import recording  # bench/recording.py
import scale  # bench/scale.py
import sealing  # bench/sealing.py, beside this file
import tracking  # bench/tracking.py
from audit_py import AuditEntry, AuditService, migrate
from audit_py.server import ThrowawayServer, throwaway_server

CLIENTS = 8
SERVER_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
COMPANIES = [uuid.UUID(int=n) for n in range(1, 51)]
WAL_ENTRIES = 40_000  # recorded by the WAL measure of the scale part, after a checkpoint

# The same row for both sides: 50 companies, random entity, user and franchise.
ROW_SQL = ("('00000000-0000-0000-0000-' || lpad(:company::text, 12, '0'))::uuid, 'CREATE_INVOICE', 'invoice',"
           " gen_random_uuid(), jsonb_build_object('amount', :amount::integer, 'currency', 'EUR'),"
           " gen_random_uuid(), gen_random_uuid()")
PGBENCH_SCRIPTS = {
    "audit.record_audit()": f"""\\set company random(1, 50)
\\set amount random(1, 100000)
SELECT audit.record_audit({ROW_SQL});
""",
    "plain INSERT": f"""\\set company random(1, 50)
\\set amount random(1, 100000)
INSERT INTO bench_plain (company_id, action, entity, entity_id, details, user_id, franchise_id)
VALUES ({ROW_SQL}) RETURNING id;
""",
}

# The plain table with the foundation's indexes only, as before 0008.reading-indexes: what the
# reading indexes cost a writer.
FOUNDATION_INDEXES_SQL = """
CREATE TABLE bench_plain_foundation (LIKE audit.audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE bench_plain_foundation ADD PRIMARY KEY (id);
CREATE INDEX ON bench_plain_foundation (company_id, franchise_id, created_at);
CREATE INDEX ON bench_plain_foundation USING brin (txid);
"""

PLAIN_INSERT = ("INSERT INTO bench_plain (company_id, action, entity, entity_id, details, user_id, franchise_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id")
RAW_RECORD_AUDIT = "SELECT audit.record_audit(%s, %s, %s, %s, %s, %s, %s)"
PLAIN_COPY = "COPY bench_plain (company_id, action, entity, entity_id, details, user_id, franchise_id) FROM STDIN"


def _entry(n: int) -> AuditEntry:
    return AuditEntry(COMPANIES[n % 50], "CREATE_INVOICE", "invoice", uuid.uuid4(),
                      {"amount": n, "currency": "EUR"}, uuid.uuid4(), uuid.uuid4())


def prepare(server: ThrowawayServer) -> None:
    migrate(server.conninfo)
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        # Identical to the log (columns, defaults, constraints, indexes) but for the triggers.
        conn.execute("CREATE TABLE bench_plain (LIKE audit.audit_logs INCLUDING ALL)")
        conn.execute(FOUNDATION_INDEXES_SQL)


def interleave(rounds: int, sides: dict[str, Callable[[], float]], alternate: bool = True) -> dict[str, list[float]]:
    """Run each side once per round, alternating which goes first unless told not to; return their rates."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for number in range(rounds):
        for name in names if number % 2 == 0 or not alternate else reversed(names):
            rates[name].append(sides[name]())
    return rates


def pgbench(server: ThrowawayServer, script: str, database: str, limit: list[str]) -> str:
    """pgbench's report of CLIENTS clients running `script` until `limit` (-T seconds or -t transactions each)."""
    path = Path(tempfile.mkdtemp()) / "script.sql"
    path.write_text(script)
    result = subprocess.run(
        [str(server.bindir / "pgbench"), "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", "2", *limit,
         "-f", str(path), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", database],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def pgbench_side(server: ThrowawayServer, script: str, seconds: int, database: str = "postgres") -> Callable[[], float]:
    def run() -> float:
        output = pgbench(server, script, database, ["-T", str(seconds)])
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
        assert match, output
        return float(match.group(1))

    return run


def threads_side(server: ThrowawayServer, seconds: float,
                 write: Callable[[psycopg.Connection[tuple[object, ...]], int], object]) -> Callable[[], float]:
    """CLIENTS threads, each on its own connection, each write its own committed transaction."""
    def run() -> float:
        connections = [psycopg.connect(server.conninfo) for _ in range(CLIENTS)]
        counts = [0] * CLIENTS
        start = threading.Barrier(CLIENTS + 1)
        deadline = 0.0

        def client(number: int) -> None:
            conn = connections[number]
            start.wait()
            while time.perf_counter() < deadline:
                write(conn, counts[number])
                conn.commit()
                counts[number] += 1

        workers = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for worker in workers:
            worker.start()
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()
        start.wait()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        for conn in connections:
            conn.close()
        return sum(counts) / elapsed

    return run


def raw_record_audit_write(conn: psycopg.Connection[tuple[object, ...]], n: int) -> object:
    entry = _entry(n)
    return conn.execute(RAW_RECORD_AUDIT, (entry.company_id, entry.action, entry.entity, entry.entity_id,
                                           Jsonb(entry.details), entry.user_id, entry.franchise_id)).fetchone()


def service_write(conn: psycopg.Connection[tuple[object, ...]], n: int) -> object:
    return AuditService(conn).record_entry(_entry(n))


def raw_write(conn: psycopg.Connection[tuple[object, ...]], n: int) -> object:
    entry = _entry(n)
    return conn.execute(PLAIN_INSERT, (entry.company_id, entry.action, entry.entity, entry.entity_id,
                                       Jsonb(entry.details), entry.user_id, entry.franchise_id)).fetchone()


def batch_sides(server: ThrowawayServer, size: int) -> dict[str, Callable[[], float]]:
    conn = psycopg.connect(server.conninfo)
    entries = [_entry(n) for n in range(size)]

    def record_many() -> float:
        began = time.perf_counter()
        AuditService(conn).record_many(entries)
        conn.commit()
        return size / (time.perf_counter() - began)

    def copy() -> float:
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(PLAIN_COPY) as data:
            for e in entries:
                data.write_row((e.company_id, e.action, e.entity, e.entity_id, Jsonb(e.details), e.user_id,
                                e.franchise_id))
        conn.commit()
        return size / (time.perf_counter() - began)

    return {"AuditService.record_many()": record_many, "COPY into plain table": copy}


def report(title: str, rates: dict[str, list[float]], target: float | None, unit: str) -> None:
    """The first side is ours; its ratio to each other side is the median of the rounds' ratios.

    Rates, not times: a ratio of 0.25 is "at most 4 times as long".
    """
    print(f"\n{title}")
    for name, values in rates.items():
        print(f"  {name:36} {statistics.median(values):>10,.0f} {unit} (median of {len(values)})")
    (ours, ours_rates), *baselines = rates.items()
    for number, (base, base_rates) in enumerate(baselines):
        ratio, spread = ratio_of(ours_rates, base_rates)
        verdict = (f"; target >= {target:.2f}: {'meets' if ratio >= target else 'MISSES'}"
                   if number == 0 and target is not None else "")
        print(f"  {ours} / {base}: {ratio:.2f} ({spread}){verdict}")


def ratio_of(ours: list[float], base: list[float]) -> tuple[float, str]:
    """The median of the rounds' ratios, and their range in words."""
    ratios = [a / b for a, b in zip(ours, base, strict=True)]
    return statistics.median(ratios), f"rounds {min(ratios):.2f} to {max(ratios):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="length of each timed run (default 5)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per comparison (default 10)")
    parser.add_argument("--batch", type=int, default=10_000, help="entries per record_many batch (default 10000)")
    parser.add_argument("--only", choices=["writes", "ceiling", "sealing", "verifying", "tracking", "reading", "scale"],
                        help="run one part only")
    parser.add_argument("--entries", type=int, default=10_000_000, help="size of the reading log (default 10M)")
    parser.add_argument("--scale-entries", type=int, default=20_000_000,
                        help="size of the large log the scale part records into (default 20M)")
    parser.add_argument("--defaults", action="store_true",
                        help="run the servers at PostgreSQL's default settings (shared_buffers 128MB, max_wal_size 1GB)"
                             " rather than the bench's")
    args = parser.parse_args()
    settings = {} if args.defaults else SERVER_SETTINGS

    # Durable as production is (fsync on); checkpoints spaced as a production server's are, so that
    # one does not land in some rounds and not others.
    if args.only in (None, "writes", "ceiling", "sealing", "verifying", "tracking"):
        with throwaway_server(fsync=True, settings=settings) as server:
            prepare(server)
            print(f"PostgreSQL {server.version}, fsync on, {CLIENTS} clients, {args.rounds} interleaved rounds"
                  f" of {args.seconds}s")
            write_parts(server, args)
    if args.only in (None, "reading"):
        with throwaway_server(fsync=True, settings=settings) as server:
            reads(server, args)
    if args.only in (None, "scale"):
        with throwaway_server(fsync=True, settings=settings) as server:
            scales(server, args)


def write_parts(server: ThrowawayServer, args: argparse.Namespace) -> None:
    if args.only in (None, "writes"):
        writes(server, args)
    if args.only in (None, "ceiling"):
        recording_ceiling(server, args)
    if args.only in (None, "sealing"):
        seals(server, args)
    if args.only in (None, "verifying"):
        verifies(server, args)
    if args.only in (None, "tracking"):
        tracks(server, args)


def writes(server: ThrowawayServer, args: argparse.Namespace) -> None:
    sides = {name: pgbench_side(server, script, args.seconds) for name, script in PGBENCH_SCRIPTS.items()}
    sides["audit.record_audit(), as before 0014"] = before.as_before_0014(
        server, "postgres", pgbench_side(server, PGBENCH_SCRIPTS["audit.record_audit()"], args.seconds))
    report("pgbench: one entry per transaction", interleave(args.rounds, sides), 0.85, "tps")
    plain = PGBENCH_SCRIPTS["plain INSERT"]
    report("pgbench: what the reading indexes (0008) cost a writer",
           interleave(args.rounds, {
               "plain INSERT, all the log's indexes": pgbench_side(server, plain, args.seconds),
               "plain INSERT, the foundation's indexes": pgbench_side(
                   server, plain.replace("bench_plain ", "bench_plain_foundation "), args.seconds),
           }), None, "tps")
    report("Python: one entry per transaction, a thread and a connection per client",
           interleave(args.rounds, {
               "AuditService.record()": threads_side(server, args.seconds, service_write),
               "raw psycopg INSERT": threads_side(server, args.seconds, raw_write),
               # Isolates the wrapper's own cost from that of the SQL function.
               "raw psycopg SELECT record_audit()": threads_side(server, args.seconds, raw_record_audit_write),
           }),
           0.9, "tps")
    report(f"Python: a batch of {args.batch:,} entries in one transaction",
           interleave(max(args.rounds, 7), batch_sides(server, args.batch)), 0.5, "entries/s")


def recording_ceiling(server: ThrowawayServer, args: argparse.Namespace) -> None:
    recording.prepare(server)
    sides = {name: pgbench_side(server, script, args.seconds) for name, script in recording.pgbench_scripts(
        PGBENCH_SCRIPTS["audit.record_audit()"], PGBENCH_SCRIPTS["plain INSERT"]).items()}
    rates = interleave(args.rounds, sides)
    report("pgbench: one entry per transaction, against recording's ceiling (bench/recording.py)", rates, 0.85, "tps")
    ceilings(rates)


def seals(server: ThrowawayServer, args: argparse.Namespace) -> None:
    one_company = PGBENCH_SCRIPTS["audit.record_audit()"].replace("random(1, 50)", "1")
    writers = pgbench_side(server, one_company, args.seconds)
    rates = interleave(args.rounds, {
        "record_audit() while sealing": sealing.writers_while_sealing(writers, server, 1.0),
        "record_audit() alone": writers,
        # The floor of any seal: the new entries hashed once a second, nothing more.
        "record_audit() while hashing the new entries": sealing.writers_while_hashing(writers, server, 1.0)})
    report("pgbench: 8 writers on ONE company, audit.seal() every second meanwhile", rates, 0.9, "tps")
    ratio, spread = ratio_of(rates["record_audit() while hashing the new entries"], rates["record_audit() alone"])
    print(f"  the least any sealing costs them, record_audit() while hashing the new entries / alone: {ratio:.2f}"
          f" ({spread})")
    report("Sealing 20,000 new entries of 50 companies",
           interleave(args.rounds, sealing.seal_sides(server, 20_000), alternate=False), 0.5, "entries/s")


def verifies(server: ThrowawayServer, args: argparse.Namespace) -> None:
    report(f"Verifying a company of {sealing.VERIFY_ENTRIES:,} entries",
           interleave(max(3, args.rounds // 3), sealing.verify_sides(server)), 0.5, "entries/s")


def tracks(server: ThrowawayServer, args: argparse.Namespace) -> None:
    tracking.prepare(server)
    scripts = tracking.pgbench_scripts()
    sides = {name: pgbench_side(server, script, args.seconds) for name, script in scripts.items()}
    single = interleave(args.rounds, sides)
    report(f"pgbench: one invoice UPDATE per transaction, {tracking.ROWS:,} invoices", single, 0.5, "tps")
    ceilings(single)
    bulk = interleave(args.rounds, tracking.bulk_sides(server))
    report("One UPDATE of every invoice (status and updated_at), committed", bulk, 1 / 3, "rows/s")
    ceilings(bulk)


def ceilings(rates: dict[str, list[float]]) -> None:
    """Each side after the second (a ceiling: the fixed entry, tracking with protections taken away) against
    the bare one (the second)."""
    (_, _), (untracked, base), *others = rates.items()
    for name, ours in others:
        ratio, spread = ratio_of(ours, base)
        print(f"  ceiling, {name} / {untracked}: {ratio:.2f} ({spread})")


def reads(server: ThrowawayServer, args: argparse.Namespace) -> None:
    began = time.perf_counter()
    big_log.generate(server, args.entries)
    print(f"\nReading: {args.entries:,} entries generated and indexed in {time.perf_counter() - began:.0f}s"
          f" (PostgreSQL {server.version})")
    rounds = max(args.rounds, 3)
    print(f"  page of 100 through AuditService: the median of {rounds} rounds, each the median ms of 21 runs"
          " (rounds' range)")
    print(f"  {'':46}" + "".join(f"{column:>26}" for column in big_log.PAGE_COLUMNS))
    for name, columns in big_log.page_latencies(server, 21, rounds).items():
        print(f"  {name:46}" + "".join(f"{statistics.median(ms):>10.2f} ({min(ms):.2f} to {max(ms):.2f})"
                                         for ms in columns))
    for name, plan in big_log.plans(server).items():
        sorts = "Sort" in plan
        print(f"  plan of {name}: {'SORTS' if sorts else 'no sort'};"
              f" {plan.splitlines()[-1].strip() if plan else ''}")
        print("    " + "\n    ".join(line for line in plan.splitlines() if "->" in line or "Scan" in line))
    cpu: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="audit-py-export-") as folder:
        exports = interleave(rounds, big_log.export_sides(server, big_log.LARGEST, Path(folder) / "export", cpu))
    report("Export of the largest company (4 in 10 entries), streamed to a file", exports, 0.85, "entries/s")
    bare = "bare COPY ... TO of the same rows"
    for name in ("bare COPY ... TO of the JSON lines", "audit-py export --format csv"):
        ratio, spread = ratio_of(exports[name], exports[bare])
        print(f"  {name} / {bare}: {ratio:.2f} ({spread})")
    for name, runs in cpu.items():
        client, backend = ([run[n] for run in runs] for n in (0, 1))
        print(f"  {name:36} CPU per entry: {statistics.median(client):.2f} µs here"
              f" ({min(client):.2f} to {max(client):.2f}), {statistics.median(backend):.2f} µs in its server backend"
              f" ({min(backend):.2f} to {max(backend):.2f}); {statistics.median(map(sum, runs)):.2f} µs in all")


def scales(server: ThrowawayServer, args: argparse.Namespace) -> None:
    began = time.perf_counter()
    scale.prepare(server, args.scale_entries, big_log.bulk_load)
    print(f"\nScale: {scale.sizes(server)}; generated and indexed in {time.perf_counter() - began:.0f}s"
          f" (PostgreSQL {server.version})")
    script = PGBENCH_SCRIPTS["audit.record_audit()"]
    report(f"pgbench: one entry per transaction, into a log of {args.scale_entries:,} entries vs an empty one",
           interleave(args.rounds, {
               "record_audit(), large log": pgbench_side(server, script, args.seconds, "big_log"),
               "record_audit(), empty log": pgbench_side(server, script, args.seconds, "empty_log"),
           }), 0.8, "tps")
    stamp = ("audit._stamp_entry()",)
    # A log written by this version, one written before 0014 (random ids) recorded into as before and
    # after the upgrade, and an empty one.
    wal_sides: list[tuple[str, str, bool]] = [
        ("big_log", "time-ordered ids, as written since 0014", False),
        ("big_log_before_0014", "random ids, as written before 0014, recorded into as before it", True),
        ("big_log_before_0014", "random ids, as written before 0014, recorded into since", False),
        ("empty_log", "empty log", False)]
    for database, name, as_before in wal_sides:
        wal_of = functools.partial(scale.wal_per_entry, server, database, functools.partial(
            pgbench, server, script, database, ["-t", str(WAL_ENTRIES // CLIENTS)]), WAL_ENTRIES)
        measured = before.as_before_0014(server, database, wal_of, stamp) if as_before else wal_of
        wal_bytes, images = measured()
        print(f"  WAL per entry into {database} ({name}): {wal_bytes:,.0f} bytes, {images:.2f} full-page images")
    report("The same with the stamp as before 0014 (random ids)",
           interleave(args.rounds, {
               "stamp before 0014, large log written before it": before.as_before_0014(
                   server, "big_log_before_0014", pgbench_side(server, script, args.seconds, "big_log_before_0014"),
                   stamp),
               "stamp before 0014, empty log": before.as_before_0014(
                   server, "empty_log", pgbench_side(server, script, args.seconds, "empty_log"), stamp),
           }), None, "tps")


if __name__ == "__main__":
    main()
