"""Tenant readers on a sharded log: row-level security holds on the workers, with the pins read there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from audit_py import AuditService

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OWNER, TENANT, WRITER, ConnectTo, spread, visible


@pytest.fixture(scope="module")
def two_companies(cluster: CitusCluster) -> Iterator[tuple[uuid.UUID, uuid.UUID]]:
    """Company A on the first worker, company B on the second, three entries each."""
    with psycopg.connect(cluster.conninfo()) as conn:
        a, b = spread(conn, cluster, 2)
    with psycopg.connect(cluster.conninfo(user=WRITER), autocommit=True) as writer:
        for company in (a, b):
            for _ in range(3):
                writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", None, None))
    yield a, b
    with psycopg.connect(cluster.conninfo(user=OWNER), autocommit=True) as owner:
        owner.execute("SELECT audit.unpin_tenant(%s)", (TENANT,))


def test_a_tenant_reads_its_company_only(connect_to: ConnectTo, two_companies: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = two_companies
    tenant = connect_to(role=TENANT)
    assert visible(tenant, a, a) == 3
    assert visible(tenant, a, b) == 0
    assert visible(tenant, b, b) == 3
    assert visible(tenant, None, a) == 0  # no context, nothing
    # set_config() alone sets the context on the coordinator only: on the workers there is none.
    with tenant.transaction(force_rollback=True):
        tenant.execute("SELECT set_config('audit.company_id', %s, true)", (str(a),))
        assert tenant.execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = %s", (a,)).fetchone() == (0,)
    # Through the service, whose context travels as SET LOCAL.
    audit = AuditService(tenant)
    with audit.context(company_id=a):
        assert len(audit.search(a).entries) == 3
        assert audit.search(b).entries == []


def test_a_pinned_tenant_reads_its_pinned_company_only(connect_to: ConnectTo,
                                                       two_companies: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = two_companies
    owner = connect_to(role=OWNER, autocommit=True)  # the installing login holds audit_admin
    owner.execute("SELECT audit.pin_tenant(%s, %s)", (TENANT, a))
    try:
        tenant = connect_to(role=TENANT)
        assert visible(tenant, a, a) == 3
        assert visible(tenant, b, b) == 0  # naming another company in the context shows nothing
    finally:
        owner.execute("SELECT audit.unpin_tenant(%s)", (TENANT,))


def test_a_tenant_connecting_to_a_worker_is_confined_there_too(
        cluster: CitusCluster, connect_to: ConnectTo, two_companies: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = two_companies
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("SELECT audit.pin_tenant(%s, %s)", (TENANT, a))
    try:
        for worker in cluster.workers:
            tenant = connect_to(worker, TENANT, options="-c citus.show_shards_for_app_name_prefixes=*")
            superuser = connect_to(worker, options="-c citus.show_shards_for_app_name_prefixes=*")
            shards = [row[0] for row in superuser.execute(
                "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace"
                " AND c.relkind = 'r' AND c.relname ~ '^audit_logs_[0-9]+$'").fetchall()]
            for company in (a, b):
                with tenant.transaction(force_rollback=True):
                    tenant.execute(f"SET LOCAL audit.company_id = '{b}'")  # pinned to a: b is refused
                    seen = sum(tenant.execute(f"SELECT count(*) FROM {shard} WHERE company_id = %s",
                                              (company,)).fetchone()[0] for shard in shards)  # type: ignore[index]
                assert seen == 0, (worker.port, company)
            with tenant.transaction(force_rollback=True):
                tenant.execute(f"SET LOCAL audit.company_id = '{a}'")
                seen = sum(tenant.execute(f"SELECT count(*) FROM {shard}").fetchone()[0]  # type: ignore[index]
                           for shard in shards)
            assert seen == (3 if worker == cluster.workers[0] else 0)
    finally:
        owner.execute("SELECT audit.unpin_tenant(%s)", (TENANT,))
