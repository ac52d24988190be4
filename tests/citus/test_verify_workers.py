"""`audit-py verify` on a coordinator reaches every worker: each worker's own protection surface (its
shards, functions, triggers, grants) against a fresh install's, and each entry's transaction id against
the worker that wrote it. Each tampering below is made on one worker only, as a superuser there, and
undone after: the cluster is shared by the whole folder."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from audit_py.cli import main as audit_py

from .cluster import CitusCluster
from .conftest import LIFT, OWNER, READER, TENANT, WRITER, ConnectTo, node_of, rewrite_shard, spread
from .test_immutability import MANUAL
from .test_sealing import _record, _verify

# A superuser on a worker, changing a shard's definition by hand (Citus refuses it otherwise), with
# nothing of it sent on to other nodes.
BY_HAND = ("-c citus.enable_manual_changes_to_shards=on -c citus.show_shards_for_app_name_prefixes=*"
           " -c citus.enable_ddl_propagation=off")


def _lifted(conn: psycopg.Connection[Any], statement: str) -> None:
    """`statement` in a transaction of its own for which the worker's DDL guard is lifted, as a superuser's
    tampering would be."""
    with conn.transaction():
        conn.execute(LIFT)
        conn.execute(statement.encode())


def _verify_all(cluster: CitusCluster, capsys: Any) -> tuple[int, str]:
    status = audit_py(["verify", "--dsn", cluster.conninfo(user=READER), "--company", str(uuid.uuid4())])
    return status, capsys.readouterr().out


def _shard_of(conn: psycopg.Connection[Any], company: uuid.UUID) -> int:
    row = conn.execute("SELECT pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)",
                       (company,)).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def _on_worker(cluster: CitusCluster, connect_to: ConnectTo, change: str, undo: str) -> Iterator[tuple[int, int]]:
    """`change` on the first company's shard of worker 1 ({shard} in it), undone by `undo` on leaving;
    yields (shard id, worker port)."""
    coordinator = connect_to()
    company = spread(coordinator, cluster, 1)[0]
    shard, worker = _shard_of(coordinator, company), node_of(coordinator, cluster, company)
    conn = connect_to(worker, options=BY_HAND, autocommit=True)
    _lifted(conn, change.format(shard=shard))
    try:
        yield shard, worker.port
    finally:
        _lifted(conn, undo.format(shard=shard))


def test_verify_checks_every_worker(cluster: CitusCluster, capsys: Any) -> None:
    status, out = _verify_all(cluster, capsys)
    assert status == 2, out  # the company has no entries: nothing to verify, and said so
    for worker in cluster.workers:
        assert f"OK         Protections in place on worker 127.0.0.1:{worker.port}: its " in out, out
    assert "TAMPERED" not in out and "UNREACHED" not in out, out


def test_a_trigger_disabled_on_a_workers_shard_is_named(cluster: CitusCluster, connect_to: ConnectTo,
                                                        capsys: Any) -> None:
    with _on_worker(cluster, connect_to,
                    "ALTER TABLE audit.audit_logs_{shard} DISABLE TRIGGER audit_logs_refuse_update_{shard}",
                    "ALTER TABLE audit.audit_logs_{shard} ENABLE ALWAYS TRIGGER audit_logs_refuse_update_{shard}"
                    ) as (shard, port):
        status, out = _verify_all(cluster, capsys)
    assert status == 1, out
    assert (f"TAMPERED   The protections of the log on worker 127.0.0.1:{port} were tampered with: table"
            f" audit.audit_logs_{shard} was changed: has 'trigger audit_logs_refuse_update_{shard}"
            " enabled D:") in out, out
    assert _verify_all(cluster, capsys)[0] == 2


def test_insert_granted_on_a_workers_shard_is_named(cluster: CitusCluster, connect_to: ConnectTo,
                                                    capsys: Any) -> None:
    with _on_worker(cluster, connect_to, f"GRANT INSERT ON audit.audit_logs_{{shard}} TO {WRITER}",
                    f"REVOKE INSERT ON audit.audit_logs_{{shard}} FROM {WRITER}") as (shard, port):
        status, out = _verify_all(cluster, capsys)
    assert status == 1, out
    assert f"on worker 127.0.0.1:{port} were tampered with: table audit.audit_logs_{shard} was changed" in out, out
    assert f"{WRITER}=INSERT" in out, out


@pytest.mark.parametrize(("change", "undo", "named"), [
    (f"GRANT audit_reader TO {TENANT}", f"REVOKE audit_reader FROM {TENANT}",
     f"{TENANT} is a member of audit_reader here"),
    (f"GRANT {READER} TO {TENANT}", f"REVOKE {READER} FROM {TENANT}", f"{TENANT} is a member of audit_reader here"),
    (f"ALTER ROLE {TENANT} BYPASSRLS", f"ALTER ROLE {TENANT} NOBYPASSRLS",
     f"{TENANT} bypasses row-level security here"),
], ids=["directly", "through another login", "bypassing row-level security"])
def test_a_tenant_made_a_reader_on_one_worker_is_named(cluster: CitusCluster, connect_to: ConnectTo, capsys: Any,
                                                       change: str, undo: str, named: str) -> None:
    """A tenant reader made able to read as audit_reader on one worker alone reads every company there."""
    with _on_worker(cluster, connect_to, change, undo) as (_, port):
        status, out = _verify_all(cluster, capsys)
    assert status == 1, out
    assert f"on worker 127.0.0.1:{port} were tampered with: {named}, not on the coordinator." in out, out
    assert _verify_all(cluster, capsys)[0] == 2


PINNED = uuid.uuid4()
# (the configuration made on the coordinator, and taken back; the table; the row in words)
CONFIGURATION = {
    "strict mode": (f"SELECT audit.enable_strict_mode('{TENANT}')", f"SELECT audit.disable_strict_mode('{TENANT}')",
                    "strict_mode", "login_role", f"strict mode covers {TENANT}"),
    "a tenant pin": (f"SELECT audit.pin_tenant('{TENANT}', '{PINNED}')", f"SELECT audit.unpin_tenant('{TENANT}')",
                     "tenant_logins", "login_role", f"{TENANT} is pinned to company {PINNED}"),
}


@pytest.mark.parametrize("configuration", CONFIGURATION)
def test_configuration_changed_in_one_workers_copy_is_named(cluster: CitusCluster, connect_to: ConnectTo,
                                                            capsys: Any, configuration: str) -> None:
    """A superuser deleting a row from one worker's copy of a reference table alone."""
    make, take_back, table, column, row = CONFIGURATION[configuration]
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute(make)
    try:
        worker = cluster.workers[0]
        conn = connect_to(worker, options=BY_HAND, autocommit=True)
        conn.execute("SET citus.override_table_visibility = off")
        shard = conn.execute("SELECT c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.relnamespace ="
                             " 'audit'::regnamespace AND c.relname ~ %s", (f"^{table}_[0-9]+$",)).fetchone()[0]  # type: ignore[index]
        conn.execute(f"DELETE FROM {shard} WHERE {column} = %s", (TENANT,))
        status, out = _verify_all(cluster, capsys)
        assert status == 1, out
        assert (f"on worker 127.0.0.1:{worker.port} were tampered with: {row} in the coordinator's copy of"
                f" audit.{table}, not in this one.") in out, out
    finally:
        owner.execute(take_back)
    assert _verify_all(cluster, capsys)[0] == 2


def test_a_function_replaced_on_one_worker_is_named(cluster: CitusCluster, connect_to: ConnectTo,
                                                    capsys: Any) -> None:
    worker = cluster.workers[1]
    conn = connect_to(worker, options=BY_HAND, autocommit=True)
    original = conn.execute("SELECT pg_catalog.pg_get_functiondef('audit._micros(timestamptz)'::regprocedure)"
                            ).fetchone()[0]  # type: ignore[index]
    assert "AS $function$" in original
    _lifted(conn, original.replace("AS $function$", "AS $function$ -- changed on one worker\n", 1))
    try:
        status, out = _verify_all(cluster, capsys)
    finally:
        _lifted(conn, original)
    assert status == 1, out
    assert (f"on worker 127.0.0.1:{worker.port} were tampered with: function"
            " audit._micros(timestamp with time zone) was changed") in out, out
    assert f"on worker 127.0.0.1:{cluster.workers[0].port}: its " in out, out  # the other is as installed
    assert out.count("TAMPERED") == 1, out


def test_an_entry_in_a_workers_future_is_named(cluster: CitusCluster, connect_to: ConnectTo, capsys: Any) -> None:
    """An unsealed entry whose transaction id the worker that wrote it has not given out yet: forged."""
    coordinator = connect_to()
    company = spread(coordinator, cluster, 1)[0]
    entries = _record(connect_to(role=WRITER, autocommit=True), company, 2)
    worker = node_of(coordinator, cluster, company)
    shard = f"audit.audit_logs_{_shard_of(coordinator, company)}"
    conn = connect_to(worker, options=MANUAL)

    def by_hand(statement: str) -> None:
        rewrite_shard(conn, shard, statement, (entries[1],))

    assert _verify(cluster, company, capsys)[0] == 0
    by_hand(f"UPDATE {shard} SET txid = pg_catalog.pg_current_xact_id()::text::bigint + 1000000 WHERE id = %s")
    try:
        status, out = _verify(cluster, company, capsys)
    finally:
        by_hand(f"DELETE FROM {shard} WHERE id = %s")
    assert status == 1, out
    assert (f"TAMPERED   Company {company}: entry {entries[1]} claims a transaction id worker"
            f" 127.0.0.1:{worker.port} has not given out yet: it was forged.") in out, out
    assert _verify(cluster, company, capsys)[0] == 0


def test_a_worker_out_of_reach_is_said_and_fails_verify(cluster: CitusCluster, connect_to: ConnectTo,
                                                        capsys: Any) -> None:
    """The reader may not log in on one worker: verify says so and exits 1, the other worker verified."""
    company = spread(connect_to(), cluster, 1)[0]
    _record(connect_to(role=WRITER, autocommit=True), company, 1)
    worker = cluster.workers[0]
    conn = connect_to(worker, options=BY_HAND, autocommit=True)
    conn.execute(f"ALTER ROLE {READER} NOLOGIN")
    try:
        status, out = _verify(cluster, company, capsys)
    finally:
        conn.execute(f"ALTER ROLE {READER} LOGIN")
    assert status == 1, out
    assert (f"UNREACHED  Worker 127.0.0.1:{worker.port} could not be reached (") in out, out
    assert "its shards' protections, and the transaction ids of the entries written there, were not verified" in out
    assert f"Protections in place on worker 127.0.0.1:{cluster.workers[1].port}" in out, out
    assert _verify(cluster, company, capsys)[0] == 0



def test_a_grant_on_the_coordinators_copy_of_a_reference_table_is_named(connect_to: ConnectTo, cluster: CitusCluster,
                                                                         capsys: Any) -> None:
    """The coordinator holds a copy of each reference table too (its queries read it): hidden from the
    catalog as every shard is, and read by the verifier all the same."""
    conn = connect_to(options=BY_HAND, autocommit=True)
    row = conn.execute("SELECT shardid FROM pg_catalog.pg_dist_shard"
                       " WHERE logicalrelid = 'audit.tenant_logins'::regclass").fetchone()
    assert row is not None
    table = f"audit.tenant_logins_{row[0]}"
    conn.execute(f"GRANT INSERT ON {table} TO {WRITER}")
    try:
        status, out = _verify_all(cluster, capsys)
    finally:
        conn.execute(f"REVOKE INSERT ON {table} FROM {WRITER}")
    assert status == 1, out
    assert f"TAMPERED   The protections of the log were tampered with: table {table} was changed" in out, out
    assert _verify_all(cluster, capsys)[0] == 2
