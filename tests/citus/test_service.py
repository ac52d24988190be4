"""AuditService on a log sharded by company: batches in order, all or nothing, and the context on the workers."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from audit_py import AsyncAuditService, AuditEntry, AuditService, InvalidEntry

from .cluster import CitusCluster
from .conftest import READER, WRITER, ConnectTo, node_of, spread, system_identifier


def _entries(companies: list[uuid.UUID], count: int) -> list[AuditEntry]:
    """Entries whose companies interleave: the order a batch gives is not the order of any shard."""
    return [AuditEntry(companies[n % len(companies)], "STEP", "invoice", uuid.uuid4(), {"n": n}, uuid.uuid4())
            for n in range(count)]


def _stored(reader: psycopg.Connection[Any], ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[Any, ...]]:
    rows = reader.execute("SELECT id, company_id, (details->>'n')::int, user_id, context, origin"
                          " FROM audit.audit_logs WHERE id = ANY(%s)", (ids,)).fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize("autocommit", [True, False])
def test_record_many_returns_ids_in_input_order_across_workers(cluster: CitusCluster, connect_to: ConnectTo,
                                                               autocommit: bool) -> None:
    coordinator = connect_to()
    companies = spread(coordinator, cluster, 5)
    conn = connect_to(role=WRITER, autocommit=autocommit)
    entries = _entries(companies, 23)
    ids = AuditService(conn).record_many(entries)
    if not autocommit:
        conn.commit()
    stored = _stored(connect_to(role=READER), ids)
    assert len(ids) == len(set(ids)) == 23 == len(stored)
    for n, (entry, entry_id) in enumerate(zip(entries, ids, strict=True)):
        company, position, user, _, origin = stored[entry_id]
        assert (company, position, user) == (entry.company_id, n, entry.user_id)
        assert origin == system_identifier(connect_to(node_of(coordinator, cluster, company)))


def test_record_many_is_all_or_nothing_across_workers(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    conn = connect_to(role=WRITER, autocommit=True)
    companies = spread(connect_to(), cluster, 4)
    entries = _entries(companies, 8)
    entries[-1] = AuditEntry(companies[-1], "   ", "invoice", uuid.uuid4())  # the last company's is bad
    with pytest.raises(InvalidEntry) as refused:
        AuditService(conn).record_many(entries)
    assert refused.value.sqlstate == "AU002" and refused.value.parameter == "action"
    assert str(refused.value).startswith("record_audit_many: entry 8 (counting from 1): action must not be blank")
    reader = connect_to(role=READER)
    assert reader.execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = ANY(%s)",
                          (companies,)).fetchone() == (0,)


def test_record_many_needs_each_company(connect_to: ConnectTo) -> None:
    conn = connect_to(role=WRITER)
    with pytest.raises(InvalidEntry) as refused:
        AuditService(conn).record_many([AuditEntry(uuid.uuid4(), "A", "x", uuid.uuid4()),
                                        AuditEntry(None, "B", "x", uuid.uuid4())])
    assert refused.value.parameter == "company_id" and "entry 2" in str(refused.value)


def test_context_reaches_the_workers(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """set_config() stays on the coordinator; the service's context must reach the worker that records."""
    conn = connect_to(role=WRITER)
    audit = AuditService(conn)
    user, inner_user, companies = uuid.uuid4(), uuid.uuid4(), spread(connect_to(), cluster, 4)
    with audit.context(user_id=user, request_id="req-1"):
        first = audit.record(companies[0], "CREATE_INVOICE", "invoice", uuid.uuid4())
        with audit.context(user_id=inner_user, step="inner"):
            inner = audit.record_many(_entries(companies, 4)[:1] + [
                AuditEntry(company, "APPROVE", "invoice", uuid.uuid4()) for company in companies[1:]])
        after = audit.record(companies[1], "PAY_INVOICE", "invoice", uuid.uuid4())
    conn.commit()
    stored = _stored(connect_to(role=READER), [first, *inner, after])
    assert stored[first][2:4] == (user, {"request_id": "req-1"})
    assert stored[inner[0]][3] == {"request_id": "req-1", "step": "inner"}  # its own user_id stays
    for entry_id in inner[1:]:
        assert stored[entry_id][2:4] == (inner_user, {"request_id": "req-1", "step": "inner"})
    assert stored[after][2:4] == (user, {"request_id": "req-1"})  # the inner context ended with its block
    workers = {stored[entry_id][4] for entry_id in (first, *inner, after)}
    assert workers == {system_identifier(connect_to(worker)) for worker in cluster.workers}


async def test_async_service_batches_in_order_with_its_context(cluster: CitusCluster) -> None:
    with psycopg.connect(cluster.conninfo()) as coordinator:
        companies, user = spread(coordinator, cluster, 3), uuid.uuid4()
    entries = [AuditEntry(companies[n % 3], "STEP", "invoice", uuid.uuid4(), {"n": n}) for n in range(7)]
    async with await psycopg.AsyncConnection.connect(cluster.conninfo(user=WRITER)) as conn:
        audit = AsyncAuditService(conn)
        async with audit.context(user_id=user, source="async"):
            ids = await audit.record_many(entries)
        await conn.commit()
    with psycopg.connect(cluster.conninfo(user=READER)) as reader:
        stored = _stored(reader, ids)
    assert [stored[entry_id][:4] for entry_id in ids] == [
        (entry.company_id, n, user, {"source": "async"}) for n, entry in enumerate(entries)]


def test_set_config_alone_would_not_reach_the_workers(connect_to: ConnectTo, company: uuid.UUID) -> None:
    """Why the service sets its context with SET LOCAL on a sharded log: what set_config() sets stays on
    the coordinator, and the entry written on the worker would carry no user."""
    conn = connect_to(role=WRITER)
    conn.execute("SELECT set_config('audit.user_id', %s, true)", (str(uuid.uuid4()),))
    entry_id = AuditService(conn).record(company, "CREATE_INVOICE", "invoice", uuid.uuid4())
    conn.commit()
    stored = _stored(connect_to(role=READER), [entry_id])
    assert stored[entry_id][2] is None
