"""audit.verify(company_id) and audit.digest() in SQL on a log sharded by company: each company checked
on the worker that holds it, as a reader calls them on the coordinator."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from audit_py import ledger

from .cluster import CitusCluster
from .conftest import LIFT, OUTSIDER, READER, WRITER, ConnectTo, node_of, rewrite_shard, spread
from .test_immutability import MANUAL
from .test_sealing import TAMPERING, _record, _seal

VERIFY = "SELECT ok, report FROM audit.verify(%s)"


def _sealed_company(cluster: CitusCluster, connect_to: ConnectTo, worker: int = 0) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A company on the given worker with 3 sealed entries and 1 not sealed yet."""
    company = spread(connect_to(), cluster, 2)[worker]
    writer = connect_to(role=WRITER, autocommit=True)
    entries = _record(writer, company, 3)
    _seal(connect_to)
    return company, entries + _record(writer, company, 1)


@pytest.mark.parametrize("worker", [0, 1])
def test_a_clean_company_verifies_on_its_worker(cluster: CitusCluster, connect_to: ConnectTo, worker: int) -> None:
    company, _ = _sealed_company(cluster, connect_to, worker)
    reader = connect_to(role=READER, autocommit=True)
    ok, report = reader.execute(VERIFY, (company,)).fetchone()  # type: ignore[misc]
    assert ok is True, report
    assert report.startswith(f"Company {company}: 1 blocks and 3 sealed entries verified; 1 entries not sealed yet;")
    # In a transaction too (force_delegation), and the company's entries written in it count.
    with reader.transaction():
        assert reader.execute(VERIFY, (company,)).fetchone()[0] is True  # type: ignore[index]
    nothing = reader.execute(VERIFY, (uuid.uuid4(),)).fetchone()
    assert nothing is not None and nothing[0] is None and "nothing to verify" in nothing[1]


def test_a_call_citus_cannot_route_is_refused_with_how_to_call_it(cluster: CitusCluster,
                                                                  connect_to: ConnectTo) -> None:
    company, _ = _sealed_company(cluster, connect_to)
    reader = connect_to(role=READER, autocommit=True)
    for statement in ("SELECT * FROM audit.verify((SELECT %s::uuid))", "SELECT audit.digest((SELECT %s::uuid))"):
        with pytest.raises(psycopg.Error) as refused:
            reader.execute(statement, (company,))
        assert refused.value.sqlstate == "AU007", refused.value
        assert "not sent to the node of company" in str(refused.value)
        assert refused.value.diag.message_hint and "SELECT * FROM audit." in refused.value.diag.message_hint
    # A NULL company is folded away before Citus plans the call (STRICT): no row, no crash.
    # Any login can write these, EXECUTE or not: the planner runs first.
    for statement, row in (("SELECT * FROM audit.verify(NULL)", (None, None, None, None)),
                           ("SELECT audit.verify(NULL)", (None,)),
                           ("SELECT audit.digest(NULL::uuid)", (None,))):
        for login in (READER, OUTSIDER):
            conn = connect_to(role=login, autocommit=True)
            try:
                assert conn.execute(statement).fetchone() == row
            except psycopg.errors.InsufficientPrivilege:
                assert login == OUTSIDER
    assert reader.execute("SELECT * FROM audit.verify(%s)", (None,)).fetchall() == [(None, None, None, None)]
    assert reader.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("how", TAMPERING.keys())
def test_a_superuser_rewriting_a_workers_shard_is_detected_by_the_sql_verify(
        cluster: CitusCluster, connect_to: ConnectTo, how: str) -> None:
    """A superuser on the worker lifts the DDL guard, disables the shard's triggers, rewrites or deletes
    a sealed entry, and puts the triggers back: audit.verify(), called on the coordinator, names it."""
    coordinator = connect_to()
    company, entries = _sealed_company(cluster, connect_to)
    reader = connect_to(role=READER, autocommit=True)
    assert reader.execute(VERIFY, (company,)).fetchone()[0] is True  # type: ignore[index]
    shard_id = coordinator.execute("SELECT pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)",
                                   (company,)).fetchone()[0]  # type: ignore[index]
    shard = f"audit.audit_logs_{shard_id}"
    worker = connect_to(node_of(coordinator, cluster, company), options=MANUAL)
    statement, finding = TAMPERING[how]
    rewrite_shard(worker, shard, statement.format(shard=shard), (entries[1],))
    ok, report = reader.execute(VERIFY, (company,)).fetchone()  # type: ignore[misc]
    assert ok is False, report
    assert f"entry {entries[1]}" in report and finding in report, report


def test_sql_digests_equal_the_python_digest(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """What `audit-py digest` writes (ledger.take_digest() of the chains ledger.verify_all() has just
    verified; the command takes every company, and other tests leave tampered ones) for two companies,
    one per worker, equals audit.digest(company_id) and audit.digest() of them."""
    companies = [_sealed_company(cluster, connect_to, worker)[0] for worker in (0, 1)]
    _seal(connect_to)  # a second block for each
    reader = connect_to(role=READER, autocommit=True)
    run = ledger.verify_all(reader, only=companies)
    assert run.exit_code == 0, [verdict.line for verdict in run.verdicts]
    python = ledger.take_digest(reader, run)["chains"]
    everything = reader.execute("SELECT audit.digest()").fetchone()[0]  # type: ignore[index]
    for company in companies:
        one = reader.execute("SELECT audit.digest(%s)", (company,)).fetchone()[0]  # type: ignore[index]
        assert one["chains"] == {str(company): python[str(company)]}
        assert one["chains"][str(company)]["block_no"] == 2
        assert everything["chains"][str(company)] == python[str(company)]
    assert reader.execute("SELECT audit.digest(%s)", (uuid.uuid4(),)).fetchone()[0]["chains"] == {}  # type: ignore[index]


def _shard_of(conn: psycopg.Connection[tuple[object, ...]], table: str, company: uuid.UUID) -> int:
    row = conn.execute("SELECT pg_catalog.get_shard_id_for_distribution_column(%s, %s)", (table, company)).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


# (tampering on the company's worker, as a superuser there; its undoing; what audit.verify() then names)
WORKER_TAMPERING = {
    "a refusal disabled on the company's shard": (
        "ALTER TABLE audit.audit_logs_{logs} DISABLE TRIGGER audit_logs_refuse_update_{logs}",
        "ALTER TABLE audit.audit_logs_{logs} ENABLE ALWAYS TRIGGER audit_logs_refuse_update_{logs}",
        "table audit.audit_logs_{logs} was changed"),
    "a policy added to the company's blocks": (
        "CREATE POLICY everyone ON audit.blocks_{blocks} FOR SELECT TO PUBLIC USING (true)",
        "DROP POLICY everyone ON audit.blocks_{blocks}",
        "table audit.blocks_{blocks} was changed"),
    "EXECUTE granted to PUBLIC on a function": (
        "GRANT EXECUTE ON FUNCTION audit._pinned_companies() TO PUBLIC",
        "REVOKE EXECUTE ON FUNCTION audit._pinned_companies() FROM PUBLIC",
        "function audit._pinned_companies() was changed"),
    "the worker's DDL guard disabled": (
        "ALTER EVENT TRIGGER audit_refuse_ddl DISABLE",
        "ALTER EVENT TRIGGER audit_refuse_ddl ENABLE ALWAYS",
        "event trigger audit_refuse_ddl was changed"),
    # An object named after a shard is still held to that shard's table's template.
    "an index on the company's shard, named after a shard on the other worker": (
        "CREATE UNIQUE INDEX censor_{remote} ON audit.audit_logs_{logs} ((true)) WHERE action = 'DELETE_INVOICE'",
        "DROP INDEX audit.censor_{remote}",
        "index audit.censor_{remote} was added"),
    "a view of the company's shard, named after another company's shard on the same worker": (
        "CREATE VIEW audit.entries_{neighbour} AS SELECT * FROM audit.audit_logs_{logs}",
        "DROP VIEW audit.entries_{neighbour}",
        "view audit.entries_{neighbour} was added"),
    "a function added": (
        "CREATE FUNCTION audit.backdoor() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "DROP FUNCTION audit.backdoor()",
        "function audit.backdoor() was added"),
}


@pytest.mark.parametrize("tampering", WORKER_TAMPERING)
def test_the_sql_verifier_names_a_workers_changed_protections(cluster: CitusCluster, connect_to: ConnectTo,
                                                              tampering: str) -> None:
    """audit.verify(company) compares, on the company's worker, its protections with a fresh install's
    worker: objects outside the shards, the company's shards, the reference tables' copies."""
    change, undo, named = WORKER_TAMPERING[tampering]
    company, _ = _sealed_company(cluster, connect_to)
    coordinator = connect_to()
    shards = {"logs": _shard_of(coordinator, "audit.audit_logs", company),
              "blocks": _shard_of(coordinator, "audit.blocks", company)}
    node = node_of(coordinator, cluster, company)
    placed = coordinator.execute(
        "SELECT p.shardid, n.nodeport FROM pg_catalog.pg_dist_shard s"
        " JOIN pg_catalog.pg_dist_placement p USING (shardid) JOIN pg_catalog.pg_dist_node n USING (groupid)"
        " WHERE s.logicalrelid = 'audit.audit_logs'::regclass").fetchall()
    shards["remote"] = next(shard for shard, port in placed if port != node.port)
    shards["neighbour"] = next(shard for shard, port in placed if port == node.port and shard != shards["logs"])
    worker = connect_to(node, options=f"{MANUAL} -c citus.enable_ddl_propagation=off",
                        autocommit=True)
    for statement in (change, undo):
        with worker.transaction():
            worker.execute(LIFT)
            worker.execute(statement.format(**shards).encode())
        if statement is change:
            ok, report = connect_to(role=READER, autocommit=True).execute(VERIFY, (company,)).fetchone()  # type: ignore[misc]
            assert ok is False, report
            assert report.startswith("The protections of the log on this worker were tampered with: "), report
            assert named.format(**shards) in report, report
    ok, report = connect_to(role=READER, autocommit=True).execute(VERIFY, (company,)).fetchone()  # type: ignore[misc]
    assert ok is True, report
