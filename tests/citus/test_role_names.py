"""Strict mode and tenant pins name roles by name on Citus (sql/citus/0005_role_names.sql). Citus 13.0.5
renames a role on the coordinator only, so after a rename the workers know the role by its old name: a
row naming a role a worker does not know fails closed there, with an error that says so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OWNER, WRITER, ConnectTo, spread, visible


@pytest.fixture
def renamed(cluster: CitusCluster, connect_to: ConnectTo) -> Iterator[str]:
    """A group role, renamed on the coordinator (Citus leaves its old name on the workers); a member
    of it, audit_writer and audit_tenant_reader too, named the returned login."""
    superuser = connect_to(autocommit=True)
    superuser.execute("CREATE ROLE renamed_group NOLOGIN")
    superuser.execute("CREATE ROLE renamed_member LOGIN IN ROLE renamed_group, audit_writer, audit_tenant_reader")
    yield "renamed_member"
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("DELETE FROM audit.tenant_logins WHERE login_role IN ('renamed_group', 'renamed_group_2')")
    owner.execute("DELETE FROM audit.strict_mode WHERE login_role IN ('renamed_group', 'renamed_group_2')")
    if superuser.execute("SELECT 1 FROM pg_roles WHERE rolname = 'renamed_group_2'").fetchone():
        superuser.execute("ALTER ROLE renamed_group_2 RENAME TO renamed_group")
    superuser.execute("DROP ROLE renamed_member")
    superuser.execute("DROP ROLE renamed_group")


def _rename(connect_to: ConnectTo) -> None:
    notices: list[str] = []
    superuser = connect_to(autocommit=True)
    superuser.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
    superuser.execute("ALTER ROLE renamed_group RENAME TO renamed_group_2")
    assert any("not propagating ALTER ROLE" in notice for notice in notices), notices


def _reads(cluster: CitusCluster, login: str, company: uuid.UUID) -> int:
    with psycopg.connect(cluster.conninfo(user=login)) as tenant:
        return visible(tenant, company, company)


def test_a_pin_of_a_role_renamed_since_fails_closed_on_the_workers(
        cluster: CitusCluster, connect_to: ConnectTo, renamed: str) -> None:
    pinned, other = spread(connect_to(), cluster, 2)
    writer = connect_to(role=WRITER, autocommit=True)
    for company in (pinned, other):
        writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("SELECT audit.pin_tenant('renamed_group', %s)", (pinned,))
    assert (_reads(cluster, renamed, pinned), _reads(cluster, renamed, other)) == (1, 0)

    # As an admin would after a rename: the old name unpinned, the new one pinned.
    owner.execute("SELECT audit.unpin_tenant('renamed_group')")
    _rename(connect_to)
    owner.execute("SELECT audit.pin_tenant('renamed_group_2', %s)", (pinned,))
    for company in (pinned, other):
        with pytest.raises(psycopg.Error) as refused:
            _reads(cluster, renamed, company)
        assert refused.value.sqlstate == "AU006"
        assert "a tenant pin names a role that does not exist on this node" in str(refused.value)


def test_strict_mode_for_a_role_renamed_since_covers_every_login_on_the_workers(
        cluster: CitusCluster, connect_to: ConnectTo, renamed: str) -> None:
    company = spread(connect_to(), cluster, 1)[0]
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("SELECT audit.enable_strict_mode('renamed_group')")
    owner.execute("SELECT audit.disable_strict_mode('renamed_group')")
    _rename(connect_to)
    owner.execute("SELECT audit.enable_strict_mode('renamed_group_2')")
    for login in (renamed, WRITER):
        with psycopg.connect(cluster.conninfo(user=login), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", None, None))
            assert refused.value.sqlstate == "AU006"
            assert "strict mode is on for role renamed_group_2, which does not exist on this node" in str(refused.value)
            # With a user, recording goes on.
            conn.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", uuid.uuid4(), None))


__all__: list[Any] = []
