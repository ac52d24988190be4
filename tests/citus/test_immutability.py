"""Changing the past is refused on every shard: through the coordinator, and on a worker's shard directly."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from audit_py.server import SUPERUSER

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OUTSIDER, READER, WRITER, ConnectTo

STATEMENTS = {
    "UPDATE": "UPDATE {table} SET company_id = company_id",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
}
# A superuser on a worker who asks to change shards by hand, in a replication session too (what a
# logical replication tool would use to skip triggers).
MANUAL = ("-c citus.enable_manual_changes_to_shards=on -c citus.show_shards_for_app_name_prefixes=*"
          " -c session_replication_role=replica")


@pytest.fixture(scope="module")
def seeded(cluster: CitusCluster) -> None:
    """An entry and a block in every shard (an UPDATE or DELETE of no row fires no row trigger). The
    blocks are written by hand, as a superuser may: what they hold does not matter here."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        one_per_shard = [row[0] for row in conn.execute(
            "SELECT DISTINCT ON (s) c FROM (SELECT c, pg_catalog.get_shard_id_for_distribution_column("
            "'audit.audit_logs', c) AS s FROM (SELECT gen_random_uuid() FROM generate_series(1, 2000)) g(c)) x"
        ).fetchall()]
        shard_count = conn.execute("SELECT count(*) FROM pg_catalog.pg_dist_shard"
                                   " WHERE logicalrelid = 'audit.audit_logs'::regclass").fetchone()
        assert (len(one_per_shard),) == shard_count
    with psycopg.connect(cluster.conninfo(user=WRITER), autocommit=True) as writer:
        for company in one_per_shard:
            writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", None, None))
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for company in one_per_shard:
            conn.execute("INSERT INTO audit.blocks (company_id, block_no, xid_from, xid_to, entry_ids, entry_hashes,"
                         " merkle_root, prev_hash, block_hash, format) VALUES (%s, 1, 0, 1, '{}', '{}',"
                         " '\\x00', '\\x00', '\\x00', 2)", (company,))


def _shards(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The shards of `table` placed on this worker, as names to query directly."""
    return [row[0] for row in conn.execute(
        "SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'audit' AND c.relkind = 'r' AND c.relname ~ %s ORDER BY 1",
        (f"^{table}_[0-9]+$",)).fetchall()]


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("table", ["audit.audit_logs", "audit.blocks"])
@pytest.mark.parametrize("statement", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_superuser_on_the_coordinator_is_refused(connect_to: ConnectTo, seeded: None, table: str,
                                                 statement: str) -> None:
    conn = connect_to()
    before = _count(conn, table)
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement.format(table=table))
    conn.rollback()
    assert refused.value.sqlstate == "AU001", refused.value
    assert _count(conn, table) == before


@pytest.mark.parametrize("table", ["audit_logs", "blocks"])
@pytest.mark.parametrize("statement", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_superuser_on_each_shard_of_each_worker_is_refused(cluster: CitusCluster, connect_to: ConnectTo,
                                                           seeded: None, table: str, statement: str) -> None:
    refused_on = 0
    for worker in cluster.workers:
        conn = connect_to(worker, SUPERUSER, options=MANUAL)
        shards = _shards(conn, table)
        assert len(shards) >= 8, f"{len(shards)} shards of {table} on port {worker.port}"
        for shard in shards:
            before = _count(conn, shard)
            assert before > 0
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement.format(table=shard))
            conn.rollback()
            assert refused.value.sqlstate == "AU001", (shard, refused.value)
            assert _count(conn, shard) == before
            refused_on += 1
    assert refused_on >= 16


def test_seeded_entries_are_on_both_workers(cluster: CitusCluster, connect_to: ConnectTo, seeded: None) -> None:
    for worker in cluster.workers:
        conn = connect_to(worker, options=MANUAL)
        assert sum(_count(conn, shard) for shard in _shards(conn, "audit_logs")) > 0


@pytest.mark.parametrize("role", [WRITER, READER, OUTSIDER])
def test_logins_connecting_to_a_worker_get_no_more_than_on_the_coordinator(
        cluster: CitusCluster, connect_to: ConnectTo, seeded: None, role: str) -> None:
    worker = cluster.workers[0]
    shard = _shards(connect_to(worker, options=MANUAL), "audit_logs")[0]
    # Citus's own refusal (XX000, "a shard of a distributed table") lifted: privileges must hold.
    conn = connect_to(worker, role, options=MANUAL.removesuffix(" -c session_replication_role=replica"))
    for statement in (f"INSERT INTO {shard} (company_id, action, entity, entity_id, details)"
                      " VALUES (gen_random_uuid(), 'X', 'x', gen_random_uuid(), '{}')",
                      f"UPDATE {shard} SET action = 'X'", f"DELETE FROM {shard}", f"TRUNCATE {shard}",
                      "UPDATE audit.audit_logs SET action = 'X'", "TRUNCATE audit.audit_logs"):
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement)
        conn.rollback()
        assert refused.value.sqlstate in ("42501", "AU001"), (statement, refused.value)
    if role != WRITER:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(RECORD_SQL, (uuid.uuid4(), "X", "x", uuid.uuid4(), "{}", None, None))
        conn.rollback()
    if role == OUTSIDER:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {shard}")
