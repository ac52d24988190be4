"""A company's shard moved to the other worker keeps its entries as stamped, and seals and verifies after."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from audit_py import citus, copied_code

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OWNER, READER, WRITER, ConnectTo, node_of, spread, system_identifier
from .test_sealing import _record, _seal, _verify

STAMP = "SELECT id, created_at, txid, origin FROM audit.audit_logs WHERE company_id = %s ORDER BY id"


def _move(conn: psycopg.Connection[Any], cluster: CitusCluster, company: uuid.UUID, mode: str) -> None:
    """Move the company's shard (and its co-located blocks shard) to the other worker."""
    source = node_of(conn, cluster, company)
    target = next(worker for worker in cluster.workers if worker != source)
    assert citus.move_company(cluster.conninfo(), company, "127.0.0.1", target.port, mode) == (
        "127.0.0.1", source.port)
    assert node_of(conn, cluster, company) == target


@pytest.mark.parametrize("mode", ["block_writes", "force_logical"])
def test_a_moved_company_keeps_its_stamps_and_seals_on_its_new_worker(
        cluster: CitusCluster, connect_to: ConnectTo, capsys: Any, mode: str) -> None:
    coordinator = connect_to(autocommit=True)
    company = spread(coordinator, cluster, 1)[0]
    old_node = node_of(coordinator, cluster, company)
    writer = connect_to(role=WRITER, autocommit=True)
    _record(writer, company, 3)
    _seal(connect_to)
    _record(writer, company, 2)  # written on the old worker, not sealed there
    reader = connect_to(role=READER, autocommit=True)
    before = reader.execute(STAMP, (company,)).fetchall()
    schema_acl = "SELECT nspacl::text FROM pg_catalog.pg_namespace WHERE nspname = 'audit'"
    acl_before = [connect_to(node).execute(schema_acl).fetchone() for node in cluster.nodes]

    # Writers keep writing while a logical move copies and catches up.
    stop, writing, written, failures = threading.Event(), threading.Event(), [], []

    def keep_writing() -> None:
        with psycopg.connect(cluster.conninfo(user=WRITER), autocommit=True) as conn:
            while not stop.is_set():
                try:
                    written.append(conn.execute(RECORD_SQL, (company, "DURING_MOVE", "invoice", uuid.uuid4(), "{}",
                                                             None, None)).fetchone()[0])  # type: ignore[index]
                    writing.set()
                except psycopg.Error as error:  # block_writes: writes wait, or fail over the switch
                    failures.append(error)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        # The move starts only once the writer is writing: otherwise a fast move can end before its first write.
        assert writing.wait(timeout=30), failures
        _move(coordinator, cluster, company, mode)
    finally:
        stop.set()
        thread.join()
    # Writes go on during the move (block_writes: they wait while the shard is copied). A call sent to
    # the old worker just as the shard switches reaches the new one as audit_definer and is refused:
    # the writer's transaction fails, nothing is written half-way.
    assert written
    assert all("audit_definer" in str(error) for error in failures) and len(failures) <= 3, failures
    after = {row[0]: row for row in reader.execute(STAMP, (company,)).fetchall()}
    for row in before:
        assert after[row[0]] == row  # id, time, txid and origin as the old worker stamped them
    assert set(written) <= set(after)
    new_node = node_of(coordinator, cluster, company)
    assert new_node != old_node
    # audit_owner never logs in, and owns the log again, its shards on every node included; the schema's
    # grants are as before.
    assert [connect_to(node).execute(schema_acl).fetchone() for node in cluster.nodes] == acl_before
    for node in cluster.nodes:
        conn = connect_to(node, autocommit=True)
        assert conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = 'audit_owner'").fetchone() \
            == (False,)
        owners = conn.execute("SELECT DISTINCT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class"
                              " WHERE relnamespace = 'audit'::regnamespace AND relkind IN ('r', 'p')"
                              " AND (relname LIKE 'audit\\_logs%%' OR relname LIKE 'blocks%%')").fetchall()
        assert owners == [("audit_owner",)], (node.port, owners)

    _record(writer, company, 1)  # on the new worker: its origin
    origins = dict(reader.execute("SELECT origin, count(*) FROM audit.audit_logs WHERE company_id = %s"
                                  " GROUP BY 1", (company,)).fetchall())
    old_origin, new_origin = system_identifier(connect_to(old_node)), system_identifier(connect_to(new_node))
    assert set(origins) <= {old_origin, new_origin} and origins[new_origin] >= 1
    sealed = _seal(connect_to)
    assert company in sealed
    status, out = _verify(cluster, company, capsys)
    assert status == 0, out
    unsealed = reader.execute(
        "SELECT count(*) FROM audit.audit_logs a WHERE a.company_id = %s AND NOT EXISTS"
        " (SELECT FROM audit.blocks b WHERE b.company_id = a.company_id AND a.id = ANY(b.entry_ids))",
        (company,)).fetchone()
    assert unsealed == (0,), out
    blocks = reader.execute("SELECT block_no, origin, xid_from, xid_to FROM audit.blocks WHERE company_id = %s"
                            " ORDER BY block_no", (company,)).fetchall()
    # The old worker's range continues on the new one, then the new worker's own begins.
    assert [block[1] for block in blocks] == [old_origin, old_origin, new_origin]
    assert blocks[1][2] == blocks[0][3]
    # The SQL verifier, on the new worker, follows the chain across both origins too.
    ok, report = reader.execute("SELECT ok, report FROM audit.verify(%s)", (company,)).fetchone()  # type: ignore[misc]
    assert ok is True, report
    assert f"{len(blocks)} blocks and {len(after) + 1} sealed entries verified; 0 entries" in report, report


def test_a_copy_that_would_run_a_table_owners_code_as_a_superuser_is_refused(
        cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """Citus copies a moved range's rows, and a new worker's reference tables, through connections as the
    superuser moving them, which a worker's guard takes for Citus's own: code a login owns or can change,
    run by a copied row (a CHECK constraint of its table, a domain its column holds even inside an array
    or a composite type), would run as that superuser and could rewrite the log there. So a move, a
    rebalance or an added worker that would copy such a table is refused, naming the login and its code,
    and nothing is moved; naming the login as trusted lets it go on."""
    owner = connect_to(role=OWNER, autocommit=True)
    coordinator = connect_to(autocommit=True)
    owner.execute("CREATE FUNCTION public.plausible(v integer) RETURNS boolean LANGUAGE sql AS 'SELECT v >= 0'")
    # Its CHECK runs a query by name, which no dependency records.
    owner.execute("CREATE TABLE public.orders (company_id uuid NOT NULL, id uuid NOT NULL, v integer"
                  " CHECK (pg_catalog.query_to_xml('SELECT public.plausible(1)', false, false, '') IS NOT NULL),"
                  " PRIMARY KEY (company_id, id))")
    owner.execute("SELECT create_distributed_table('public.orders', 'company_id', colocate_with => 'audit.audit_logs')")
    # A superuser's reference table, a column of it an array of the login's domain.
    owner.execute("CREATE DOMAIN public.quantity AS integer CHECK (public.plausible(VALUE))")
    coordinator.execute("CREATE TABLE public.codes (code text PRIMARY KEY, sizes public.quantity[])")
    coordinator.execute("SELECT create_reference_table('public.codes')")
    company = spread(coordinator, cluster, 1)[0]
    source = node_of(coordinator, cluster, company)
    target = next(worker for worker in cluster.workers if worker != source)
    try:
        with pytest.raises(citus.MoveError) as moving:
            citus.move_company(cluster.conninfo(), company, "127.0.0.1", target.port)
        assert str(moving.value).startswith("moving a company's shard would copy tables whose rows run")
        assert f"{OWNER} (table orders)" in str(moving.value), moving.value
        assert str(moving.value).endswith(f"name them: --trust-owner {OWNER}")
        with pytest.raises(citus.MoveError) as rebalancing:
            citus.rebalance(cluster.conninfo())
        assert f"{OWNER} (table orders)" in str(rebalancing.value)
        # A node to add would get a copy of the reference table; a worker that has one already, none.
        adding = copied_code.refusal(coordinator, copied_code.REFERENCE_SQL, "adding a worker", (), ("127.0.0.1", 1))
        assert adding is not None
        assert f"{OWNER} (domain quantity; function plausible(integer); type quantity; type quantity[])" in adding
        assert citus.add_worker(cluster.conninfo(), "127.0.0.1", target.port) is False
        assert node_of(coordinator, cluster, company) == source
        # Trusted as a superuser, by name: the same tables then move.
        _move_trusting(coordinator, cluster, company, target)
    finally:
        coordinator.execute("DROP TABLE public.codes")
        owner.execute("DROP TABLE public.orders")
        coordinator.execute("CALL pg_catalog.citus_cleanup_orphaned_resources()")  # the shards the move left
        owner.execute("DROP DOMAIN public.quantity")
        owner.execute("DROP FUNCTION public.plausible(integer)")


def _move_trusting(coordinator: psycopg.Connection[Any], cluster: CitusCluster, company: uuid.UUID,
                   target: Any) -> None:
    citus.move_company(cluster.conninfo(), company, "127.0.0.1", target.port, trust=[OWNER])
    assert node_of(coordinator, cluster, company) == target


def test_the_tables_are_given_back_past_a_reader_that_deadlocks_with_it(cluster: CitusCluster,
                                                                          connect_to: ConnectTo) -> None:
    """A reader holding audit.blocks asks for audit.audit_logs while the loan ends, which holds the one
    and waits for the other: PostgreSQL ends the giving back as a deadlock. It is tried again, and the
    log's tables go back to audit_owner, rather than stay the superuser's (found by attacking it)."""
    conn = connect_to(autocommit=True)
    citus._lend_tables(conn, citus._LOG_TABLES, to_mover=True)
    reader, watcher = connect_to(role=READER), connect_to(autocommit=True)
    reader.execute("SELECT count(*) FROM audit.blocks")  # held until its transaction ends

    def deadlock() -> None:
        while not watcher.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE NOT granted"
                                  " AND relation = 'audit.blocks'::regclass)").fetchone()[0]:  # type: ignore[index]
            time.sleep(0.05)
        reader.execute("SELECT count(*) FROM audit.audit_logs")  # waits for the giving back: a deadlock
        time.sleep(1)
        reader.rollback()

    thread = threading.Thread(target=deadlock)
    thread.start()
    try:
        citus._give_back(cluster.conninfo(), citus._LOG_TABLES)
    finally:
        thread.join()
    owners = conn.execute("SELECT relname::text, relowner::regrole::text FROM pg_catalog.pg_class"
                          " WHERE oid IN ('audit.audit_logs'::regclass, 'audit.blocks'::regclass)").fetchall()
    assert {owner for _, owner in owners} == {"audit_owner"}


def test_a_table_co_located_while_the_move_waits_is_seen(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """A login's transaction co-locating its table with the log, still open when a move begins, holds the
    log's table: the move waits for it, and once it commits the move sees the table and is refused, rather
    than checking before and copying it after (found by attacking it)."""
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("CREATE TABLE public.late (company_id uuid NOT NULL, v integer CHECK (v >= 0))")
    coordinator, watcher = connect_to(autocommit=True), connect_to(autocommit=True)
    company = spread(coordinator, cluster, 1)[0]
    source = node_of(coordinator, cluster, company)
    target = next(worker for worker in cluster.workers if worker != source)
    pending = connect_to(role=OWNER)
    pending.execute("SELECT create_distributed_table('public.late', 'company_id', colocate_with => 'audit.audit_logs')")
    failures: list[BaseException] = []

    def move() -> None:
        try:
            citus.move_company(cluster.conninfo(), company, "127.0.0.1", target.port)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            failures.append(error)

    thread = threading.Thread(target=move)
    thread.start()
    try:
        while not watcher.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE NOT granted"
                                  " AND relation = 'audit.audit_logs'::regclass)").fetchone()[0]:  # type: ignore[index]
            time.sleep(0.05)
        pending.commit()
    finally:
        thread.join()
        owner.execute("DROP TABLE public.late")
    assert len(failures) == 1 and isinstance(failures[0], citus.MoveError), failures
    assert f"{OWNER} (table late)" in str(failures[0])
    assert node_of(coordinator, cluster, company) == source
    owners = coordinator.execute("SELECT relowner::regrole::text FROM pg_catalog.pg_class"
                                 " WHERE oid IN ('audit.audit_logs'::regclass, 'audit.blocks'::regclass)").fetchall()
    assert owners == [("audit_owner",), ("audit_owner",)]


def test_a_trusted_domains_check_calling_a_logins_function_is_seen_however_nested(
        cluster: CitusCluster, connect_to: ConnectTo) -> None:
    """A superuser's domain whose CHECK calls a function a login owns (and can replace), held by a column
    only inside an array or a composite type: its function is named, and the move refused."""
    owner, coordinator = connect_to(role=OWNER, autocommit=True), connect_to(autocommit=True)
    owner.execute("CREATE FUNCTION public.positive(v integer) RETURNS boolean LANGUAGE sql AS 'SELECT v > 0'")
    coordinator.execute("CREATE DOMAIN public.size AS integer CHECK (public.positive(VALUE))")
    coordinator.execute("CREATE TYPE public.line AS (size public.size, note text)")
    coordinator.execute("CREATE TABLE public.parcels (company_id uuid NOT NULL, sizes public.size[], line public.line)")
    coordinator.execute("SELECT create_distributed_table('public.parcels', 'company_id',"
                        " colocate_with => 'audit.audit_logs')")
    company = spread(coordinator, cluster, 1)[0]
    target = next(worker for worker in cluster.workers if worker != node_of(coordinator, cluster, company))
    try:
        with pytest.raises(citus.MoveError) as moving:
            citus.move_company(cluster.conninfo(), company, "127.0.0.1", target.port)
        assert f"{OWNER} (function positive(integer))" in str(moving.value), moving.value
    finally:
        coordinator.execute("DROP TABLE public.parcels")
        coordinator.execute("DROP TYPE public.line")
        coordinator.execute("DROP DOMAIN public.size")
        owner.execute("DROP FUNCTION public.positive(integer)")
