"""Reading a log of 10 million entries: page latencies, the plans behind them, and export throughput.

The log is generated on a server of its own: 50 companies, the largest holding 40% of the entries
over 200 franchises and 500 users, spread over a year; one invoice has 20,000 entries of history.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from audit_py import AuditService, migrate, queries, reading
from audit_py.server import ThrowawayServer


def _uuid(kind: int, n: int) -> uuid.UUID:
    return uuid.UUID(f"{kind:08x}-0000-4000-8000-{n:012x}")


# The franchise and the user are the largest company's (n % 10 < 4 for both).
LARGEST, FRANCHISE, USER, HOT_INVOICE = _uuid(1, 1), _uuid(2, 3), _uuid(3, 42), _uuid(4, 0)

# Built without indexes and with the stamp trigger off (a throwaway server: the stamp would give a whole
# batch one created_at), then indexed; what the queries meet is the log as the migrations define it.
GENERATE_SQL = """
INSERT INTO audit.audit_logs (id, company_id, franchise_id, user_id, action, entity, entity_id, details,
                              created_at, txid)
SELECT gen_random_uuid(),
       CASE WHEN n %% 10 < 4 THEN '00000001-0000-4000-8000-000000000001'::uuid
            ELSE ('00000001-0000-4000-8000-' || lpad(to_hex(2 + n %% 49), 12, '0'))::uuid END,
       CASE WHEN n %% 7 = 0 THEN NULL ELSE ('00000002-0000-4000-8000-' || lpad(to_hex(n %% 200), 12, '0'))::uuid END,
       ('00000003-0000-4000-8000-' || lpad(to_hex(n %% 500), 12, '0'))::uuid,
       (ARRAY['CREATE_INVOICE', 'UPDATE_INVOICE', 'PAY_INVOICE', 'CREATE_ORDER'])[1 + n %% 4],
       'invoice',
       CASE WHEN n %% 500 = 0 THEN '00000004-0000-4000-8000-000000000000'::uuid
            ELSE ('00000004-0000-4000-8000-' || lpad(to_hex(n %% 1000000), 12, '0'))::uuid END,
       jsonb_build_object('amount', n %% 10000, 'currency', 'EUR'),
       timestamptz '2026-01-01 00:00:00+00' + (n * 3) * interval '1 second',
       NULL
FROM generate_series(%(low)s::bigint, %(high)s::bigint) n
"""
CHUNK = 1_000_000


def generate(server: ThrowawayServer, entries: int) -> None:
    migrate(server.conninfo)
    bulk_load(server.conninfo, GENERATE_SQL, entries)


def bulk_load(conninfo: str, generate_sql: str, entries: int) -> None:
    """`entries` entries from `generate_sql` (given low, high and entries), loaded then indexed."""
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        # The guard of superuser installs lifts for one transaction, the one it names.
        conn.execute("SELECT set_config('audit.allow_ddl', pg_current_xact_id()::text, true)")
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        indexes = conn.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
                               " WHERE indrelid = 'audit.audit_logs'::regclass").fetchall()
        constraint = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                                  " WHERE conname = 'audit_logs_pkey'").fetchone()
        conn.execute("ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_pkey")
        for name, _ in indexes:
            if name != "audit.audit_logs_pkey":
                conn.execute(f"DROP INDEX {name}")
        conn.execute("ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_stamp")
        for low in range(0, entries, CHUNK):
            conn.execute(generate_sql, {"low": low, "high": min(low + CHUNK, entries) - 1, "entries": entries})
        conn.execute("ALTER TABLE audit.audit_logs ENABLE TRIGGER audit_logs_stamp")
        assert constraint is not None
        conn.execute(f"ALTER TABLE audit.audit_logs ADD CONSTRAINT audit_logs_pkey {constraint[0]}")
        for name, definition in indexes:
            if name != "audit.audit_logs_pkey":
                conn.execute(definition)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit.audit_logs")


QUERIES: dict[str, dict[str, object]] = {
    "latest of the largest company, all franchises": {},
    "latest of one franchise": {"franchise_id": FRANCHISE},
    "latest of one user": {"user_id": USER},
}


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


PAGE_COLUMNS = ("first page", "100th page")
BARE_PAGE = f"SELECT {queries.RECORD_COLUMNS} FROM audit.search(%s, page_size => 101)"


def page_latencies(server: ThrowawayServer, repeat: int, rounds: int) -> dict[str, list[list[float]]]:
    """Per query, per column of PAGE_COLUMNS: the median ms of `repeat` runs, in each of `rounds` rounds,
    the queries taking turns; through AuditService, as an application reads."""
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        audit = AuditService(conn)
        runs: dict[str, list[Callable[[], object]]] = {}
        for name, filters in QUERIES.items():
            cursor = None
            for _ in range(99):
                cursor = audit.search(LARGEST, after=cursor, **filters).next  # type: ignore[arg-type]
            runs[name] = [lambda f=filters: audit.search(LARGEST, **f),  # type: ignore[misc]
                          lambda f=filters, c=cursor: audit.search(LARGEST, after=c, **f)]  # type: ignore[misc]
        # AuditService.history() reads a whole history at once; a page of audit.history() read the way
        # AuditService reads rows (its reading cursor) is the comparable figure.
        page = f"SELECT {queries.RECORD_COLUMNS} FROM audit.history('invoice', %s, 100, %s, %s)"
        last = None
        for _ in range(99):
            rows = conn.execute("SELECT created_at, id FROM audit.history('invoice', %s, 100, %s, %s)",
                                (HOT_INVOICE, *(last or (None, None)))).fetchall()
            last = rows[-1] if rows else last  # a small log (--entries) has fewer pages

        def history(after: tuple[object, object] | None) -> object:
            with audit._reading() as cur:
                return cur.execute(page, (HOT_INVOICE, *(after or (None, None)))).fetchall()

        runs["history of one invoice (20,000 entries)"] = [lambda: history(None), lambda: history(last)]
        # The floor: the same rows as bare psycopg fetches them, as tuples.
        runs["bare psycopg: the first query's rows as tuples"] = [
            lambda: conn.execute(BARE_PAGE, (LARGEST,)).fetchall()]
        results: dict[str, list[list[float]]] = {name: [[] for _ in sides] for name, sides in runs.items()}
        for _ in range(rounds):
            for name, sides in runs.items():
                for column, run in enumerate(sides):
                    results[name][column].append(_median_ms(run, repeat))
    return results


def plans(server: ThrowawayServer) -> dict[str, str]:
    """The plan each function ran, as auto_explain logs it from inside."""
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
                     " SET auto_explain.log_level = notice; SET client_min_messages = notice")
        found = {}
        for name, filters in QUERIES.items():
            notices.clear()
            AuditService(conn).search(LARGEST, **filters)  # type: ignore[arg-type]
            found[name] = next(n for n in notices if "FROM audit.audit_logs" in n)
        notices.clear()
        conn.execute("SELECT * FROM audit.history('invoice', %s)", (HOT_INVOICE,)).fetchall()
        found["history of one invoice (20,000 entries)"] = next(n for n in notices if "FROM audit.audit_logs" in n)
    return found


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a local process so far (Linux), 0 where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_sides(server: ThrowawayServer, company: uuid.UUID, out: Path,
                 cpu: dict[str, list[tuple[float, float]]]) -> dict[str, Callable[[], float]]:
    """audit-py export (JSON lines) of one company against a bare COPY of the same rows, in the same order,
    against a bare COPY of the JSON lines the export's own statement makes (what the format costs), and
    against the export as CSV; each to a file `out` of its own (none replaces another's). Each run also adds
    to `cpu` the CPU time per entry, in µs, of this process and of its server backend: on a busy machine
    rates follow what other processes leave, CPU time much less."""

    def timed(name: str, run: Callable[[psycopg.Connection[tuple[object, ...]]], int]) -> Callable[[], float]:
        def side() -> float:
            with psycopg.connect(server.conninfo) as conn:
                backend = conn.info.backend_pid
                began, client, served = time.perf_counter(), time.process_time(), _cpu_seconds(backend)
                rows = run(conn)
                elapsed = time.perf_counter() - began
                cpu.setdefault(name, []).append(((time.process_time() - client) / rows * 1e6,
                                                 (_cpu_seconds(backend) - served) / rows * 1e6))
                return rows / elapsed
        return side

    def ours(conn: psycopg.Connection[tuple[object, ...]]) -> int:
        return reading.export(conn, company, None, None, "jsonl", out.with_suffix(".jsonl"), None)

    def ours_csv(conn: psycopg.Connection[tuple[object, ...]]) -> int:
        return reading.export(conn, company, None, None, "csv", out.with_suffix(".csv"), None)

    def bare(statement: str, suffix: str) -> Callable[[psycopg.Connection[tuple[object, ...]]], int]:
        def run(conn: psycopg.Connection[tuple[object, ...]]) -> int:
            rows = 0
            with conn.cursor() as cur, out.with_suffix(suffix).open("wb") as file, \
                    cur.copy(statement, {"company_id": company}) as copy:
                for data in copy:
                    file.write(data)
                    rows += 1
            return rows
        return run

    where = "WHERE company_id = %(company_id)s"
    sides = {
        "audit-py export --format jsonl": ours,
        "bare COPY ... TO of the same rows": bare(
            f"COPY (SELECT * FROM audit.audit_logs {where} ORDER BY created_at, id) TO STDOUT", ".copy"),
        # What the format costs, apart from the export: the export's own COPY of JSON lines, bare.
        "bare COPY ... TO of the JSON lines": bare(reading.EXPORT_JSON_SQL.replace("{where}", where), ".json-copy"),
        "audit-py export --format csv": ours_csv,
    }
    return {name: timed(name, run) for name, run in sides.items()}
