"""`audit-py citus-install`: the log distributed by company_id, and every node holding the same functions."""

from __future__ import annotations

from typing import Any

import psycopg

from audit_py import citus
from audit_py.cli import main as audit_py

from .cluster import CitusCluster
from .conftest import OWNER, ConnectTo

FUNCTIONS = """
SELECT p.oid::pg_catalog.regprocedure::text, p.proowner::pg_catalog.regrole::text, p.prosecdef,
       p.proconfig, p.proacl::text, pg_catalog.md5(p.prosrc)
FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace ORDER BY 1
"""


def test_tables_distributed_by_company_and_co_located(connect_to: ConnectTo) -> None:
    conn = connect_to()
    rows = dict(conn.execute(
        "SELECT logicalrelid::text, (partmethod, column_to_column_name(logicalrelid, partkey), colocationid)::text"
        " FROM pg_catalog.pg_dist_partition WHERE logicalrelid::text LIKE 'audit.%'").fetchall())
    assert set(rows) == {"audit.audit_logs", "audit.blocks", "audit.strict_mode", "audit.tenant_logins"}
    assert rows["audit.audit_logs"].startswith("(h,company_id,")
    assert rows["audit.audit_logs"] == rows["audit.blocks"]  # co-located: same method, column, colocation id
    assert rows["audit.strict_mode"].startswith("(n,") and rows["audit.tenant_logins"].startswith("(n,")
    key = conn.execute("SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
                       " WHERE conname = 'audit_logs_pkey'").fetchone()
    assert key == ("PRIMARY KEY (company_id, id)",)


def test_every_worker_has_every_function_as_the_coordinator_has_it(cluster: CitusCluster,
                                                                  connect_to: ConnectTo) -> None:
    on_coordinator = connect_to().execute(FUNCTIONS).fetchall()
    assert len(on_coordinator) > 30
    for worker in cluster.workers:
        assert connect_to(worker).execute(FUNCTIONS).fetchall() == on_coordinator
    # Nothing for PUBLIC on any node (Citus creates functions with PostgreSQL's default, EXECUTE).
    for node in cluster.nodes:
        public = connect_to(node).execute(
            "SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p"
            " WHERE p.pronamespace = 'audit'::pg_catalog.regnamespace"
            " AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')").fetchall()
        assert public == [], f"PUBLIC may run these on port {node.port}"


def test_install_again_changes_nothing(cluster: CitusCluster, capsys: Any) -> None:
    assert audit_py(["citus-install", "--dsn", cluster.conninfo(user=OWNER),
                     "--superuser-dsn", cluster.conninfo()]) == 0
    assert capsys.readouterr().out.splitlines() == ["already up to date", "already distributed"]


def test_distributing_needs_a_superuser(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """The installing login may not run the distribution itself (nor would a half of it stay)."""
    conn = connect_to(role=OWNER)
    try:
        with conn.transaction():
            for statement in citus.distribute_statements():
                conn.execute(statement.encode())
    except psycopg.Error as error:
        assert error.sqlstate == "42501", error
    else:
        raise AssertionError("the installing login distributed the log")


def test_a_later_migration_is_refused_on_a_distributed_log(cluster: CitusCluster, connect_to: ConnectTo,
                                                            capsys: Any) -> None:
    """Applied on the coordinator alone, a migration would change its log and not the workers': both
    `migrate` and `citus-install` refuse, and change nothing. A migration not applied yet is made so by
    taking 0015's row out of yoyo's bookkeeping for the test."""
    owner = connect_to(role=OWNER, autocommit=True)
    latest = owner.execute("SELECT migration_hash, migration_id, applied_at_utc FROM _yoyo_migration"
                           " ORDER BY migration_id DESC LIMIT 1").fetchone()
    assert latest is not None and latest[1] == "0015.tracking-plans"
    owner.execute("DELETE FROM _yoyo_migration WHERE migration_id = %s", (latest[1],))
    try:
        for command in (["migrate", "--dsn", cluster.conninfo(user=OWNER)],
                        ["citus-install", "--dsn", cluster.conninfo(user=OWNER),
                         "--superuser-dsn", cluster.conninfo()]):
            capsys.readouterr()
            assert audit_py(command) == 2
            err = capsys.readouterr().err
            assert (f"audit-py {command[0]}: this log is sharded on Citus, and 0015.tracking-plans cannot be applied"
                    " to it: upgrading a distributed log is not supported yet") in err, err
    finally:
        owner.execute("INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) VALUES (%s, %s, %s)",
                      latest)
    assert audit_py(["migrate", "--dsn", cluster.conninfo(user=OWNER)]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_uninstall_is_refused_on_a_distributed_log(cluster: CitusCluster, connect_to: ConnectTo,
                                                   capsys: Any) -> None:
    capsys.readouterr()
    assert audit_py(["uninstall", "--dsn", cluster.conninfo(user=OWNER), "--destroy-entries"]) == 2
    assert ("audit-py uninstall: this log is sharded on Citus: uninstalling a distributed log is not supported"
            in capsys.readouterr().err)
    assert connect_to().execute("SELECT count(*) FROM pg_catalog.pg_dist_partition"
                                " WHERE logicalrelid::text LIKE 'audit.%'").fetchone() == (4,)
