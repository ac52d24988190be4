"""Sealing and verification speed, each against the bare work it cannot avoid, in the same run."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from audit_py import canonical, ledger, wire
from audit_py.server import ThrowawayServer

BATCH_SQL = """
INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, user_id)
SELECT ('00000000-0000-0000-0000-' || lpad((n %% 50 + 1)::text, 12, '0'))::uuid, 'CREATE_INVOICE', 'invoice',
       gen_random_uuid(), jsonb_build_object('amount', n, 'currency', 'EUR', 'lines', jsonb_build_array(n, n + 1)),
       gen_random_uuid()
FROM generate_series(1, %s) n
"""
UNSEALED_HASH_SCAN = """
SELECT count(audit.entry_hash(e)) FROM audit.audit_logs e
WHERE e.txid >= (SELECT coalesce(max(xid_to), 0) FROM audit.blocks)
"""
FETCH_SQL = """
SELECT id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at, txid, context, origin
FROM audit.audit_logs WHERE company_id = %s AND coalesce(txid, 0) < %s ORDER BY coalesce(txid, 0)
"""


def seal_sides(server: ThrowawayServer, entries: int) -> dict[str, Callable[[], float]]:
    """audit.seal() of a fresh batch, against one scan hashing the same unsealed rows just before.

    Both run in one process: a query inside a PL/pgSQL function gets no parallel workers, and on a
    busy server neither would a sealing job; a parallel baseline would compare CPU budgets, not work.
    """
    conn = psycopg.connect(server.conninfo, autocommit=True)
    conn.execute("SET max_parallel_workers_per_gather = 0")
    last_scan = [0.0]

    def scan() -> float:
        conn.execute(BATCH_SQL, (entries,))
        # The first read of new rows sets their hint bits: let neither timed side pay for that.
        conn.execute(UNSEALED_HASH_SCAN.replace("audit.entry_hash(e)", "*")).fetchone()
        began = time.perf_counter()
        conn.execute(UNSEALED_HASH_SCAN).fetchone()
        last_scan[0] = entries / (time.perf_counter() - began)
        return last_scan[0]

    def seal() -> float:
        began = time.perf_counter()
        conn.execute("SELECT count(*) FROM audit.seal()").fetchone()
        return entries / (time.perf_counter() - began)

    # Order matters here: the scan must see the batch unsealed, so each round is "scan, then seal".
    return {"audit.seal()": seal, "hashing scan of the same rows": scan}


VERIFY_ENTRIES = 200_000


def verify_sides(server: ThrowawayServer) -> dict[str, Callable[[], float]]:
    """ledger.verify_all() of one company, against fetching and hashing its rows in a bare loop.

    The loop is the least any verifier does: the same rows through the same binary loaders, each
    hashed in canonical form; verify adds the protection surface, the chain, and counting every row.
    """
    conn = psycopg.connect(server.conninfo)
    company = uuid.UUID(int=1)
    row = conn.execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = %s", (company,)).fetchone()
    assert row is not None
    if row[0] < VERIFY_ENTRIES:
        conn.execute(BATCH_SQL.replace("(n %% 50 + 1)", "1"), (VERIFY_ENTRIES - row[0],))
        conn.commit()
        conn.autocommit = True
        conn.execute("SELECT count(*) FROM audit.seal()")
        conn.execute("VACUUM (ANALYZE) audit.audit_logs")  # hint bits set, as on a log at rest
        conn.autocommit = False
    row = conn.execute("SELECT count(*), (SELECT max(xid_to) FROM audit.blocks WHERE company_id = %s)"
                       " FROM audit.audit_logs WHERE company_id = %s", (company, company)).fetchone()
    assert row is not None
    count, sealed_to = row
    conn.commit()

    def verify() -> float:
        began = time.perf_counter()
        run = ledger.verify_all(conn, [company])
        assert run.exit_code == 0, [v.report for v in run.verdicts]
        return count / (time.perf_counter() - began)

    def fetch_and_hash() -> float:
        began = time.perf_counter()
        with conn.transaction(), wire.raw(conn.cursor(name="bare", binary=True)) as cur:
            cur.itersize = 10_000
            for entry in cur.execute(FETCH_SQL, (company, sealed_to)):
                hashlib.sha256(canonical.raw_entry_bytes(*entry)).digest()
        return count / (time.perf_counter() - began)

    return {"audit-py verify (Python)": verify, "fetch and hash loop": fetch_and_hash}


# The least any seal does to the entries written since the last: hash each once. Found as the seal finds
# them, by the (origin, txid) index; the last txid hashed is where the next scan starts.
NEW_ENTRIES_HASH_SCAN = """
SELECT count(audit.entry_hash(e)), max(e.txid) FROM audit.audit_logs e
WHERE e.origin = (pg_catalog.pg_control_system()).system_identifier AND e.txid > %s
"""


def writers_while_sealing(pgbench: Callable[[], float], server: ThrowawayServer,
                          interval: float) -> Callable[[], float]:
    """The pgbench run, with audit.seal() called every `interval` seconds meanwhile."""
    return _writers_while(pgbench, server, interval, lambda conn: conn.execute("SELECT count(*) FROM audit.seal()"))


def writers_while_hashing(pgbench: Callable[[], float], server: ThrowawayServer,
                          interval: float) -> Callable[[], float]:
    """The pgbench run, with the entries written since the last scan hashed every `interval` seconds: the
    floor of any sealing that writers run beside."""
    last = [0]

    def hash_new(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if not last[0]:
            row = conn.execute("SELECT coalesce(max(txid), 0) FROM audit.audit_logs").fetchone()
            last[0] = int(row[0]) if row else 0
        row = conn.execute(NEW_ENTRIES_HASH_SCAN, (last[0],)).fetchone()
        if row and row[1] is not None:
            last[0] = int(row[1])

    return _writers_while(pgbench, server, interval, hash_new)


def _writers_while(pgbench: Callable[[], float], server: ThrowawayServer, interval: float,
                   meanwhile: Callable[[psycopg.Connection[tuple[object, ...]]], object]) -> Callable[[], float]:
    def run() -> float:
        stop = threading.Event()

        def sealer() -> None:
            with psycopg.connect(server.conninfo, autocommit=True) as conn:
                conn.execute("SET max_parallel_workers_per_gather = 0")  # as the seal, in PL/pgSQL, has none
                while not stop.wait(interval):
                    meanwhile(conn)

        thread = threading.Thread(target=sealer)
        thread.start()
        try:
            return pgbench()
        finally:
            stop.set()
            thread.join()

    return run
