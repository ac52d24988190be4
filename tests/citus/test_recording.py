"""Recording on Citus: the call goes to the worker that holds the company, and the entry is stamped there."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from audit_py import AuditService

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import READER, WRITER, ConnectTo, node_of, spread, system_identifier


def _stamp(conn: psycopg.Connection[Any], entry_id: uuid.UUID) -> tuple[int, int]:
    row = conn.execute("SELECT origin, txid FROM audit.audit_logs WHERE id = %s", (entry_id,)).fetchone()
    assert row is not None, f"entry {entry_id} is not there"
    return int(row[0]), int(row[1])


def _args(company: uuid.UUID, action: str = "CREATE_INVOICE") -> tuple[object, ...]:
    return (company, action, "invoice", uuid.uuid4(), '{"amount": 10}', uuid.uuid4(), None)


def test_explain_shows_one_task_on_the_companys_worker(cluster: CitusCluster, connect_to: ConnectTo,
                                                       company: uuid.UUID) -> None:
    writer = connect_to(role=WRITER)
    plan = "\n".join(row[0] for row in writer.execute(
        "EXPLAIN (VERBOSE) " + RECORD_SQL.replace("%s", "{}").format(
            *(f"'{value}'" if value is not None else "NULL" for value in _args(company)))).fetchall())
    worker = node_of(connect_to(), cluster, company)
    assert "Task Count: 1" in plan, plan
    assert f"Node: host=127.0.0.1 port={worker.port} " in plan, plan
    # The call itself is sent, not an INSERT: record_audit()'s body, inlined, is a call Citus delegates.
    assert "SELECT audit._record_audit_at('" in plan, plan


def _calls(conn: psycopg.Connection[Any]) -> int:
    """How often this node has written an entry for audit.record_audit() (track_functions = pl)."""
    conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
    row = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_catalog.pg_stat_user_functions"
                       " WHERE schemaname = 'audit' AND funcname = '_record_audit_at'").fetchone()
    assert row is not None
    return int(row[0])


def test_recorded_from_sql_on_the_companys_worker(cluster: CitusCluster, connect_to: ConnectTo,
                                                 company: uuid.UUID) -> None:
    worker = node_of(connect_to(), cluster, company)
    on_coordinator, on_worker = connect_to(autocommit=True), connect_to(worker, autocommit=True)
    calls_before = _calls(on_coordinator), _calls(on_worker)
    writer = connect_to(role=WRITER, autocommit=True)
    row = writer.execute(RECORD_SQL, _args(company)).fetchone()
    assert row is not None
    writer.close()  # its session's statistics are flushed as it ends
    origin, txid = _stamp(connect_to(role=READER), row[0])
    # Stamped by the worker: its system identifier, a transaction id it gave out.
    assert origin == system_identifier(on_worker) != system_identifier(on_coordinator)
    assert txid < int(on_worker.execute("SELECT pg_catalog.txid_current()").fetchone()[0])  # type: ignore[index]
    # The worker wrote the entry, the coordinator did not: the call was delegated. (The worker's
    # session is Citus's cached connection, whose statistics reach the shared counters within a second.)
    deadline = time.monotonic() + 10
    while _calls(on_worker) == calls_before[1] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (_calls(on_coordinator), _calls(on_worker)) == (calls_before[0], calls_before[1] + 1)


def test_a_transaction_records_on_each_companys_worker_and_rolls_back_whole(
        cluster: CitusCluster, connect_to: ConnectTo) -> None:
    coordinator = connect_to()
    companies = spread(coordinator, cluster, 6)
    writer = connect_to(role=WRITER)
    with writer.transaction():
        committed = [writer.execute(RECORD_SQL, _args(company)).fetchone()[0]  # type: ignore[index]
                     for company in companies]
    reader = connect_to(role=READER)
    for company, entry_id in zip(companies, committed, strict=True):
        origin, _ = _stamp(reader, entry_id)
        assert origin == system_identifier(connect_to(node_of(coordinator, cluster, company)))

    rolled_back = []
    with writer.transaction(force_rollback=True):
        rolled_back = [writer.execute(RECORD_SQL, _args(company, "LOST")).fetchone()[0]  # type: ignore[index]
                       for company in companies]
    assert reader.execute("SELECT count(*) FROM audit.audit_logs WHERE id = ANY(%s)",
                          (rolled_back,)).fetchone() == (0,)


def test_audit_service_records_on_the_worker_in_the_callers_transaction(
        cluster: CitusCluster, connect_to: ConnectTo, company: uuid.UUID) -> None:
    conn = connect_to(role=WRITER)
    audit = AuditService(conn)
    with conn.transaction():
        first = audit.record(company, "CREATE_INVOICE", "invoice", uuid.uuid4(), {"amount": "1.50"})
        second = audit.record(company, "APPROVE_INVOICE", "invoice", uuid.uuid4(), {"step": "manager"},
                              user_id=uuid.uuid4())
    reader = connect_to(role=READER)
    worker = connect_to(node_of(connect_to(), cluster, company))
    (origin, txid), (origin2, txid2) = _stamp(reader, first), _stamp(reader, second)
    assert origin == origin2 == system_identifier(worker)
    assert txid == txid2  # one transaction on the worker, as on the coordinator
    with conn.transaction(force_rollback=True):
        lost = audit.record(company, "LOST", "invoice", uuid.uuid4())
    assert reader.execute("SELECT count(*) FROM audit.audit_logs WHERE id = %s", (lost,)).fetchone() == (0,)


def test_a_null_company_is_refused_and_the_coordinator_survives(connect_to: ConnectTo) -> None:
    """Citus 13.0.5 crashes the coordinator planning a delegated call whose company is a NULL constant:
    no call a writer can make may reach it (sql/citus/0020_recording.sql)."""
    bystander = connect_to(role=READER, autocommit=True)  # a crash would end every session
    writer = connect_to(role=WRITER)
    attempts = {
        "SELECT audit.record_audit(NULL, 'X', 'x', '00000000-0000-4000-8000-000000000001')": "AU002",
        "SELECT audit.record_audit(NULL::uuid, 'X', 'x', '00000000-0000-4000-8000-000000000001')": "AU002",
        "SELECT audit.record_audit(company_id => %s, action => 'X', entity => 'x',"
        " entity_id => '00000000-0000-4000-8000-000000000001')": "AU002",
        "SELECT audit._record_audit_at(NULL, '{X,x}', '{00000000-0000-4000-8000-000000000001}', '{\"{}\"}')": None,
        "SELECT audit.record_audit_many_of(NULL, '{X}', '{x}', '{00000000-0000-4000-8000-000000000001}',"
        " '{\"{}\"}', '{NULL}', '{NULL}')": None,
    }
    for in_transaction in (False, True):
        for statement, sqlstate in attempts.items():
            params = (None,) if "%s" in statement else None
            if in_transaction:
                writer.execute("SELECT 1")  # a transaction block is open from here
            if sqlstate is None:  # folded to NULL while planning: nothing recorded, nothing sent
                assert writer.execute(statement, params).fetchone() == (None,)
            else:
                with pytest.raises(psycopg.Error) as refused:
                    writer.execute(statement, params)
                assert refused.value.sqlstate == sqlstate, (statement, refused.value)
            writer.rollback()
    # The company from the context cannot be routed: refused, with what to do.
    writer.execute("SET LOCAL audit.company_id = '00000000-0000-4000-8000-00000000c001'")
    with pytest.raises(psycopg.Error) as refused:
        writer.execute("SELECT audit.record_audit(NULL, 'X', 'x', '00000000-0000-4000-8000-000000000001')")
    assert refused.value.sqlstate == "AU006" and "company_id as an argument" in str(refused.value.diag.message_hint)
    writer.rollback()
    assert bystander.execute("SELECT 1").fetchone() == (1,)
