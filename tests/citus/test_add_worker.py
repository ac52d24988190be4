"""A worker added after `citus-install`: `audit-py citus-add-worker` makes it part of the log, pins and
strict mode mean there what they mean everywhere, and a company moved to it records, seals and verifies.

A cluster of its own (a coordinator, one worker, and a node to add), so that the shared one keeps its
two workers. The node to add has given out oids to roles of its own first: a role's oid there is not
the one it has on the other nodes, as on any node added later.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from audit_py import citus
from audit_py.cli import main as audit_py
from audit_py.server import ThrowawayServer

from ..helpers import RECORD_SQL
from .cluster import DATABASE, CitusCluster, citus_cluster, citus_node, install_log
from .conftest import OWNER, READER, TENANT, WRITER, node_of, visible

# A login whose name, a line break inside, reads as two lines of memberships the coordinator has too.
FORGED = "app_reader is a member of audit_reader\napp_reader"


@dataclass(frozen=True)
class Grown:
    cluster: CitusCluster  # the new node among its workers
    added: ThrowawayServer
    pinned: uuid.UUID  # the company TENANT is pinned to, on the first worker
    verify_before: tuple[int, str]  # after a bare citus_add_node()
    refused: tuple[int, str]  # citus-add-worker, while the node has a membership of its own
    add_worker: tuple[int, str]  # once that membership is gone
    verify_after: tuple[int, str]


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = audit_py(list(argv))
    return status, out.getvalue()


@pytest.fixture(scope="module")
def grown() -> Iterator[Grown]:
    with citus_cluster(workers=1) as small, citus_node() as added:
        install_log(small)
        with psycopg.connect(added.conninfo_for(DATABASE), autocommit=True) as conn:
            for n in range(5):
                conn.execute(f"CREATE ROLE local_only_{n}")
            # A node used before: its tenant login a member of the reader's login, so an audit_reader
            # through it, and a login named like a line of the check, which Citus both leave as they are.
            conn.execute(f"CREATE ROLE audit_reader; CREATE ROLE {READER} LOGIN IN ROLE audit_reader;"
                         f" CREATE ROLE {TENANT} LOGIN IN ROLE {READER}")
            conn.execute(f'CREATE ROLE "{FORGED}" LOGIN IN ROLE audit_reader')
        pinned = uuid.uuid4()
        with psycopg.connect(small.conninfo(user=OWNER), autocommit=True) as owner:
            owner.execute("SELECT audit.pin_tenant(%s, %s)", (TENANT, pinned))
            owner.execute("SELECT audit.enable_strict_mode(%s)", (WRITER,))
        # As an administrator would, by Citus's own function alone.
        with psycopg.connect(small.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (added.port,))
        verify = ("verify", "--dsn", small.conninfo(user=READER))
        verify_before = _cli(*verify)
        add_worker = ("citus-add-worker", "--dsn", small.conninfo(), "--host", "127.0.0.1", "--port", str(added.port))
        refused = _cli(*add_worker)
        with psycopg.connect(added.conninfo_for(DATABASE), autocommit=True,
                             options="-c citus.enable_ddl_propagation=off") as conn:
            conn.execute(f'REVOKE {READER} FROM {TENANT}; DROP ROLE "{FORGED}"')
        yield Grown(CitusCluster(small.coordinator, (*small.workers, added)), added, pinned,
                    verify_before, refused, _cli(*add_worker), _cli(*verify))


def test_a_worker_added_by_citus_alone_is_named_by_verify_until_made_part_of_the_log(grown: Grown) -> None:
    status, out = grown.verify_before
    worker = f"worker 127.0.0.1:{grown.added.port}"
    assert status == 1
    # Citus gives PUBLIC EXECUTE on every function it creates there, and installs no DDL guard.
    assert f"TAMPERED   The protections of the log on {worker}" in out
    assert "has 'privileges PUBLIC=EXECUTE,audit_definer=EXECUTE'" in out
    assert "event trigger audit_refuse_ddl is missing" in out
    assert f"{TENANT} is a member of audit_reader here, not on the coordinator" in out
    status, out = grown.refused
    assert status == 2
    assert out.startswith(f"audit-py citus-add-worker: on 127.0.0.1:{grown.added.port}, ")
    assert f"{TENANT} is a member of audit_reader here, not on the coordinator" in out
    assert '"app_reader is a member of audit_reader\napp_reader" is a member of audit_reader here' in out
    assert out.endswith(": make that node's memberships of the log's roles the coordinator's (as a superuser there,"
                        " with citus.enable_ddl_propagation = off), then run citus-add-worker again\n")
    assert grown.add_worker == (0, f"already a node, made part of the log again: 127.0.0.1:{grown.added.port}\n")
    status, out = grown.verify_after
    assert status == 0, out
    assert f"OK         Protections in place on {worker}" in out


def _on_the_added_worker(grown: Grown) -> uuid.UUID:
    """A company other than the pinned one, its shard moved to the added worker."""
    with psycopg.connect(grown.cluster.conninfo()) as conn:
        company = next(c for c in iter(uuid.uuid4, None) if node_of(conn, grown.cluster, c) != grown.added)
        citus.move_company(grown.cluster.conninfo(), company, "127.0.0.1", grown.added.port)
        assert node_of(conn, grown.cluster, company) == grown.added
    return company


def test_pins_and_strict_mode_name_the_same_roles_on_the_added_worker(grown: Grown) -> None:
    company = _on_the_added_worker(grown)
    with psycopg.connect(grown.cluster.conninfo(user=WRITER), autocommit=True) as writer:
        # Strict mode covers the writer there too: no entry without a user.
        with pytest.raises(psycopg.Error) as refused:
            writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", None, None))
        assert refused.value.sqlstate == "AU006"
        writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))
    # The pinned tenant, naming that company in its context, reads nothing of it there.
    with psycopg.connect(grown.cluster.conninfo(user=TENANT)) as tenant:
        assert visible(tenant, company, company) == 0
    with psycopg.connect(grown.cluster.conninfo(user=READER)) as reader:
        assert visible(reader, company, company) == 1
    # What the added worker's copies hold: the names given, not oids of its own roles.
    with psycopg.connect(grown.cluster.conninfo(grown.added)) as conn:
        conn.execute("SET citus.override_table_visibility = off")
        shards: dict[bool, str] = dict(conn.execute(
            "SELECT c.relname::text ~ '^tenant', c.oid::regclass::text FROM pg_catalog.pg_class c"
            " WHERE c.relnamespace = 'audit'::regnamespace AND c.relname ~ '^(tenant_logins|strict_mode)_[0-9]+$'"
        ).fetchall())
        assert conn.execute(f"SELECT login_role::text, company_id FROM {shards[True]}").fetchall() == [
            (TENANT, grown.pinned)]
        assert conn.execute(f"SELECT login_role::text FROM {shards[False]}").fetchall() == [(WRITER,)]


def test_a_company_moved_to_the_added_worker_seals_and_verifies_there(grown: Grown) -> None:
    company = _on_the_added_worker(grown)
    with psycopg.connect(grown.cluster.conninfo(user=WRITER), autocommit=True) as writer:
        for _ in range(3):
            writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))
    with psycopg.connect(grown.cluster.conninfo(user=OWNER), autocommit=True) as sealer:
        sealed = {row[0]: row[2] for row in sealer.execute("SELECT * FROM audit.seal()").fetchall()}
    assert sealed[company] == 3
    status, out = _cli("verify", "--dsn", grown.cluster.conninfo(user=READER), "--company", str(company))
    assert status == 0, out
    with psycopg.connect(grown.cluster.conninfo(user=READER)) as reader:
        row = reader.execute("SELECT ok FROM audit.verify(%s)", (company,)).fetchone()
    assert row is not None and row[0] is True


def test_only_a_superuser_adds_a_worker(grown: Grown) -> None:
    status, out = _cli("citus-add-worker", "--dsn", grown.cluster.conninfo(user=OWNER), "--host", "127.0.0.1",
                       "--port", str(grown.added.port))
    assert (status, out) == (2, "audit-py citus-add-worker: adding a worker needs a superuser login\n")


def test_rebalancing_spreads_the_log_over_the_added_worker_and_keeps_it_whole(grown: Grown) -> None:
    companies = [uuid.uuid4() for _ in range(12)]
    with psycopg.connect(grown.cluster.conninfo(user=WRITER), autocommit=True) as writer:
        for company in companies:
            writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))
    stamps = ("SELECT company_id, id, created_at, txid, origin FROM audit.audit_logs WHERE company_id = ANY(%s)"
              " ORDER BY id")
    with psycopg.connect(grown.cluster.conninfo(user=READER), autocommit=True) as reader:
        before = reader.execute(stamps, (companies,)).fetchall()
    with psycopg.connect(grown.cluster.conninfo(user=OWNER), autocommit=True) as sealer:
        sealer.execute("SELECT audit.seal()")

    status, out = _cli("citus-rebalance", "--dsn", grown.cluster.conninfo())
    assert status == 0, out
    moved = int(out.removeprefix("shards moved: "))
    with psycopg.connect(grown.cluster.conninfo()) as conn:
        per_worker = dict(conn.execute(
            "SELECT n.nodeport, count(*) FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p"
            " USING (shardid) JOIN pg_catalog.pg_dist_node n USING (groupid)"
            " WHERE s.logicalrelid = 'audit.audit_logs'::regclass GROUP BY n.nodeport").fetchall())
        owners = conn.execute("SELECT relname::text, relowner::regrole::text FROM pg_catalog.pg_class"
                              " WHERE relnamespace = 'audit'::regnamespace AND relkind = 'r'").fetchall()
    assert moved > 0
    # Even within Citus's default threshold: 10% of the 16 shards each worker would hold.
    assert len(per_worker) == 2 and max(per_worker.values()) - min(per_worker.values()) <= 2, per_worker
    assert {owner for _, owner in owners} == {"audit_owner"}

    with psycopg.connect(grown.cluster.conninfo(user=READER), autocommit=True) as reader:
        assert reader.execute(stamps, (companies,)).fetchall() == before
    with psycopg.connect(grown.cluster.conninfo(user=WRITER), autocommit=True) as writer:
        for company in companies:
            writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))
    with psycopg.connect(grown.cluster.conninfo(user=OWNER), autocommit=True) as sealer:
        sealed = {row[0]: row[2] for row in sealer.execute("SELECT * FROM audit.seal()").fetchall()}
    assert all(sealed[company] == 1 for company in companies)
    status, out = _cli("verify", "--dsn", grown.cluster.conninfo(user=READER))
    assert status == 0, out
