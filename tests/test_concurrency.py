"""Eight writers on separate connections, at once: nothing lost, nothing duplicated, nobody blocked."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from audit_py import AuditEntry, AuditService
from audit_py.server import SUPERUSER

from .conftest import READER, WRITER, ConnectAs

WRITERS = 8
SINGLE = 150
BATCHES = 5
BATCH = 40


def test_eight_concurrent_writers_lose_nothing(connect_as: ConnectAs) -> None:
    company = uuid.uuid4()  # one company: the worst case for any per-tenant contention
    connections = [connect_as(WRITER) for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)

    def write(number: int) -> list[uuid.UUID]:
        conn = connections[number]
        service = AuditService(conn)
        start.wait()
        ids = []
        for n in range(SINGLE):
            ids.append(service.record(company, "CREATE_INVOICE", "invoice", uuid.uuid4(),
                                      {"writer": number, "n": n}))
            conn.commit()
        for b in range(BATCHES):
            ids += service.record_many(AuditEntry(company, "APPROVE_INVOICE", "invoice", uuid.uuid4(),
                                                  {"writer": number, "batch": b}) for _ in range(BATCH))
            conn.commit()
        return ids

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))

    expected = WRITERS * (SINGLE + BATCHES * BATCH)
    returned = [entry_id for ids in results for entry_id in ids]
    assert len(returned) == len(set(returned)) == expected
    stored = connect_as(READER).execute(
        "SELECT id, details->>'writer' FROM audit.audit_logs WHERE company_id = %s", (company,)).fetchall()
    assert {row[0] for row in stored} == set(returned)
    per_writer = {str(w): 0 for w in range(WRITERS)}
    for _, writer in stored:
        per_writer[writer] += 1
    assert set(per_writer.values()) == {SINGLE + BATCHES * BATCH}


def test_a_writer_holding_its_transaction_open_blocks_no_other(connect_as: ConnectAs) -> None:
    company = uuid.uuid4()
    slow, fast = connect_as(WRITER), connect_as(WRITER)
    fast.execute("SET lock_timeout = '2s'")
    AuditService(slow).record(company, "A", "e", uuid.uuid4())  # transaction left open
    AuditService(fast).record(company, "B", "e", uuid.uuid4())
    fast.commit()
    slow.commit()
    row = connect_as(SUPERUSER).execute("SELECT count(*) FROM audit.audit_logs").fetchone()
    assert row == (2,)
