"""The DDL guard on every node: on a worker, only Citus's own operations (a superuser on a connection
Citus says is its own) and a superuser who lifts it for a transaction pass; no other role, whatever it
sets. Shard moves (test_shard_moves.py) and tracking (test_tracking.py) pass through it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from audit_py import citus
from audit_py.cli import main as audit_py
from audit_py.server import SUPERUSER

from .cluster import CitusCluster
from .conftest import LIFT, READER, WRITER, ConnectTo, node_of, spread
from .test_immutability import MANUAL, _shards
from .test_sealing import _record
from .test_shard_moves import _move

# Citus's own connections name themselves so (citus 13.0.5, DetermineCitusBackendType()); any client can.
AS_CITUS = ["citus_internal gpid=10000000001", "citus_rebalancer gpid=10000000001"]
SQUATTER = "audit_guard_squatter"
# Citus refuses DDL of distributed objects on a worker unless told not to propagate it: so told, only
# the guard stands in the way.
LOCAL = "-c citus.enable_ddl_propagation=off"


def _refused(conn: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    conn.rollback()
    return refused.value


def test_the_guard_is_on_every_node(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    for node in cluster.nodes:
        triggers = dict(connect_to(node).execute(
            "SELECT evtname, evtenabled FROM pg_catalog.pg_event_trigger WHERE evtname LIKE 'audit%'").fetchall())
        expected = {"audit_refuse_ddl": "A", "audit_refuse_drop": "A"}
        if node != cluster.coordinator:
            expected |= {"audit_citus_lift_ddl": "A", "audit_citus_lift_drop": "A"}
        assert triggers == expected, node.port


def test_a_superuser_on_a_worker_is_refused_without_the_lift(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    for worker in cluster.workers:
        conn = connect_to(worker, SUPERUSER, options=f"{MANUAL} {LOCAL}")
        shard = _shards(conn, "audit_logs")[0]
        for statement in (f"ALTER TABLE {shard} DISABLE TRIGGER USER",
                          f"DROP INDEX audit.{_index_of(conn, shard)}",
                          "CREATE FUNCTION audit.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                          "DROP FUNCTION audit._merkle_root(bytea[])"):
            refused = _refused(conn, statement)
            assert refused.sqlstate == "AU003", (worker.port, statement, refused)
        # A setting that names no transaction of its own, and a run_command connection, lift nothing.
        conn.execute("SET audit.allow_ddl = '1'")
        conn.execute("SET application_name = 'citus_run_command gpid=10000000001'")
        assert _refused(conn, f"ALTER TABLE {shard} DISABLE TRIGGER USER").sqlstate == "AU003"


def _index_of(conn: psycopg.Connection[Any], shard: str) -> str:
    row = conn.execute("SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
                       " WHERE i.indrelid = %s::regclass ORDER BY 1 LIMIT 1", (shard,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_superuser_on_a_worker_passes_with_the_lift(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    conn = connect_to(cluster.workers[0], SUPERUSER, options=MANUAL)
    shard = _shards(conn, "audit_logs")[0]
    with conn.transaction(force_rollback=True):
        conn.execute(LIFT)
        conn.execute(f"ALTER TABLE {shard} DISABLE TRIGGER USER")


@pytest.fixture
def squatter(cluster: CitusCluster, connect_to: ConnectTo) -> Any:
    """A login that owns a function of schema audit on the first worker (put there by a superuser who
    lifted the guard): its own object, which only the guard keeps it from changing."""
    coordinator = connect_to(autocommit=True)
    coordinator.execute(f"CREATE ROLE {SQUATTER} LOGIN NOSUPERUSER")  # Citus creates it on every node
    coordinator.execute(f"GRANT audit_reader TO {SQUATTER}")  # USAGE on schema audit, to name its function
    worker = connect_to(cluster.workers[0], options=LOCAL)
    with worker.transaction():
        worker.execute(LIFT)
        worker.execute("CREATE FUNCTION audit.squatted() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        worker.execute(f"ALTER FUNCTION audit.squatted() OWNER TO {SQUATTER}")
    yield SQUATTER
    with worker.transaction():
        worker.execute(LIFT)
        worker.execute("DROP FUNCTION IF EXISTS audit.squatted()")
    coordinator.execute(f"DROP ROLE {SQUATTER}")


@pytest.mark.parametrize("application_name", [None, *AS_CITUS])
def test_a_non_superuser_owner_on_a_worker_cannot_lift_the_guard(
        cluster: CitusCluster, connect_to: ConnectTo, squatter: str, application_name: str | None) -> None:
    extra = {"application_name": application_name} if application_name else {}
    conn = connect_to(cluster.workers[0], squatter, options=f"-c audit.allow_ddl=1 {LOCAL}", **extra)
    # What its ownership alone allows (AU003 comes after the command ran: privileges let it).
    for statement in ("COMMENT ON FUNCTION audit.squatted() IS 'mine'",
                      "ALTER FUNCTION audit.squatted() SECURITY DEFINER",
                      "DROP FUNCTION audit.squatted()"):
        for lift in ("", LIFT):
            if lift:
                conn.execute(lift)
            refused = _refused(conn, statement)
            assert refused.sqlstate == "AU003", (application_name, statement, lift, refused)
    assert conn.execute("SELECT prosecdef FROM pg_catalog.pg_proc WHERE proname = 'squatted'").fetchone() == (False,)


def test_a_moved_shard_is_dropped_from_its_old_worker_through_the_guard(cluster: CitusCluster,
                                                                        connect_to: ConnectTo) -> None:
    """Citus drops the old placement after a move (as the extension's owner, on its own connection):
    the guard lets it, and nothing is left to clean up."""
    coordinator = connect_to(autocommit=True)
    company = spread(coordinator, cluster, 1)[0]
    _record(connect_to(role=WRITER, autocommit=True), company, 1)
    source = node_of(coordinator, cluster, company)
    shard_id = coordinator.execute("SELECT pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)",
                                   (company,)).fetchone()[0]  # type: ignore[index]
    _move(coordinator, cluster, company, "block_writes")
    coordinator.execute("CALL pg_catalog.citus_cleanup_orphaned_resources()")
    assert coordinator.execute("SELECT count(*) FROM pg_catalog.pg_dist_cleanup").fetchone() == (0,)
    old = connect_to(source, options=MANUAL)
    assert old.execute("SELECT pg_catalog.to_regclass(%s)", (f"audit.audit_logs_{shard_id}",)).fetchone() == (None,)


def test_the_guard_dropped_from_every_node_is_named_by_verify(cluster: CitusCluster, connect_to: ConnectTo,
                                                              capsys: Any) -> None:
    """citus-install always installs the guard, as a superuser: on Citus no node may lack it, the
    coordinator included (on one PostgreSQL, a non-superuser's install has none)."""
    for node in cluster.nodes:
        conn = connect_to(node, SUPERUSER, options=LOCAL)
        with conn.transaction():
            conn.execute(LIFT)
            conn.execute("DROP SCHEMA audit_guard CASCADE")
    try:
        status = audit_py(["verify", "--dsn", cluster.conninfo(user=READER)])
        out = capsys.readouterr().out
        assert status == 1
        assert "The protections of the log were tampered with: " in out
        for worker in cluster.workers:
            assert f"on worker 127.0.0.1:{worker.port} were tampered with:" in out
        assert out.count("event trigger audit_refuse_ddl is missing") == len(cluster.nodes)
    finally:
        # What puts the guard back on every node: citus-add-worker, for a worker that is one already.
        assert citus.add_worker(cluster.conninfo(), "127.0.0.1", cluster.workers[0].port) is False
    test_the_guard_is_on_every_node(cluster, connect_to)
