"""Sealing that moves with the database: a restore into a cluster whose transaction counter is far
behind, and a logical replica fed while writers write and seals seal (docs/sealing.md)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from audit_py import AuditService, SealingRefused, ledger, migrate
from audit_py.server import SUPERUSER, ThrowawayServer, throwaway_server

from .conftest import LOGIN_ROLES, OWNER, READER, WRITER
from .helpers import record
from .test_cli import audit_py

COMPANY, OTHER = uuid.uuid4(), uuid.uuid4()
RECORD = ("SELECT audit.record_audit(company_id => %s, action => 'CREATE_INVOICE', entity => 'invoice',"
          " entity_id => gen_random_uuid())")
# What a replica must hold as its publisher does: every entry with its stamps, and every block.
SNAPSHOT_SQL = """
SELECT (SELECT count(*) FROM audit.audit_logs), (SELECT count(*) FROM audit.blocks),
       (SELECT string_agg(concat_ws(':', id, txid, origin, created_at), ',' ORDER BY id) FROM audit.audit_logs)
"""


def _create_logins(server: ThrowawayServer) -> None:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        for role, options in LOGIN_ROLES.items():
            conn.execute(f'CREATE ROLE "{role}" {options}')  # type: ignore[arg-type]


def _installed(server: ThrowawayServer, dbname: str = "erp") -> str:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname} OWNER {OWNER}")  # type: ignore[arg-type]
    migrate(server.conninfo_for(dbname, user=OWNER))
    with psycopg.connect(server.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute(f"GRANT audit_writer TO {WRITER}; GRANT audit_reader TO {READER}")  # type: ignore[arg-type]
    return dbname


def _both_verify(server: ThrowawayServer, dbname: str, companies: list[uuid.UUID]) -> None:
    with psycopg.connect(server.conninfo_for(dbname, user=READER)) as reader:
        run = ledger.verify_all(reader)
        assert run.exit_code == 0, [v.report for v in run.verdicts]
        assert {v.company_id for v in run.verdicts} == {None, *companies}
        for company in companies:
            row = reader.execute("SELECT ok, report FROM audit.verify(%s)", (company,)).fetchone()
            reader.commit()
            assert row is not None and row[0] is True, row


def _burn_transactions(server: ThrowawayServer, count: int) -> None:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        for _ in range(count):
            conn.execute("SELECT pg_current_xact_id()")


@pytest.fixture(scope="module")
def source() -> Iterator[ThrowawayServer]:
    with throwaway_server(fsync=False, settings={"wal_level": "logical", "max_prepared_transactions": "4"}) as server:
        _create_logins(server)
        yield server


def test_a_restore_into_a_cluster_whose_counter_is_far_behind(source: ThrowawayServer, tmp_path: Path) -> None:
    dbname = _installed(source, "restored_from")
    _burn_transactions(source, 3000)  # the source has lived longer than the fresh cluster will have
    with psycopg.connect(source.conninfo_for(dbname, user=WRITER)) as writer, \
            psycopg.connect(source.conninfo_for(dbname, user=OWNER)) as owner:
        for company in (COMPANY, OTHER):
            record(writer, company)
        ledger.seal(owner)
        unsealed = record(writer, COMPANY)  # written, not sealed, when the dump is taken
    with psycopg.connect(source.conninfo_for(dbname)) as superuser:
        row = superuser.execute("SELECT max(xid_to) FROM audit.blocks").fetchone()
        assert row is not None
        sealed_to = row[0]

    # The README's commands: roles first, then the database.
    bindir = source.bindir
    roles, dump = tmp_path / "roles.sql", tmp_path / "erp.dump"
    subprocess.run([str(bindir / "pg_dumpall"), "--roles-only", "-h", "127.0.0.1", "-p", str(source.port),
                    "-U", SUPERUSER, "-f", str(roles)], check=True)
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(source.port), "-U", SUPERUSER,
                    "-f", str(dump), dbname], check=True)
    with throwaway_server(fsync=False) as target:
        subprocess.run([str(bindir / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(target.port), "-U",
                        SUPERUSER, "-d", "postgres", "-f", str(roles)], check=True, capture_output=True)
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE erp OWNER {OWNER}")  # type: ignore[arg-type]
        restored = subprocess.run([str(bindir / "pg_restore"), "-h", "127.0.0.1", "-p", str(target.port), "-U",
                                   SUPERUSER, "-d", "erp", "--exit-on-error", str(dump)],
                                  capture_output=True, text=True)
        assert restored.returncode == 0, restored.stderr
        _both_verify(target, "erp", [COMPANY, OTHER])

        with psycopg.connect(target.conninfo_for("erp", user=WRITER)) as writer, \
                psycopg.connect(target.conninfo_for("erp", user=OWNER)) as owner, \
                psycopg.connect(target.conninfo_for("erp")) as superuser:
            after = record(writer, COMPANY)
            row = superuser.execute("SELECT txid FROM audit.audit_logs WHERE id = %s", (after,)).fetchone()
            assert row is not None and row[0] < sealed_to, "the new cluster's counter is behind the old one's"
            made = sorted(block[1:] for block in ledger.seal(owner))
            # The entry the dump caught unsealed closes the old cluster's range; the new one opens this one's.
            assert made == [(2, 1), (3, 1)]
            for company in (COMPANY, OTHER):
                record(writer, company)
            assert len(ledger.seal(owner)) == 2
            sealed = superuser.execute("SELECT count(*) FROM audit.audit_logs a JOIN audit.blocks b"
                                   " ON a.id = ANY (b.entry_ids) WHERE a.id IN (%s, %s)", (unsealed, after)).fetchone()
            assert sealed == (2,)
        _both_verify(target, "erp", [COMPANY, OTHER])


def test_a_logical_replica_keeps_every_entry_as_stamped(source: ThrowawayServer) -> None:
    dbname = _installed(source, "published")
    with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute("CREATE PUBLICATION audit_log FOR TABLE audit.audit_logs, audit.blocks")
    writer_dsn, owner_dsn = source.conninfo_for(dbname, user=WRITER), source.conninfo_for(dbname, user=OWNER)
    with psycopg.connect(writer_dsn) as writer:
        for company in (COMPANY, OTHER):
            record(writer, company)  # there before the subscription: the initial copy carries them
    with psycopg.connect(owner_dsn) as owner:
        ledger.seal(owner)

    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with psycopg.connect(writer_dsn) as conn:
                audit = AuditService(conn)
                while not stop.is_set():
                    audit.record(COMPANY if time.monotonic() % 2 < 1 else OTHER, "CREATE_INVOICE", "invoice",
                                 uuid.uuid4(), {"n": 1})
                    conn.commit()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    def seal() -> None:
        try:
            with psycopg.connect(owner_dsn) as conn:
                while not stop.wait(0.2):
                    ledger.seal(conn)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    with throwaway_server(fsync=False) as replica:
        _create_logins(replica)
        _installed(replica)
        threads = [threading.Thread(target=write) for _ in range(3)] + [threading.Thread(target=seal)]
        for thread in threads:
            thread.start()
        try:
            with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
                conn.execute(f"CREATE SUBSCRIPTION audit_log CONNECTION '{source.conninfo_for(dbname)}'"
                             " PUBLICATION audit_log")  # type: ignore[arg-type]
            time.sleep(3)  # writers and seals go on while the copy runs and changes stream
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors, errors
        with psycopg.connect(owner_dsn, autocommit=True) as owner:
            ledger.seal(owner)  # the last entries too
        with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as superuser:
            expected = superuser.execute(SNAPSHOT_SQL).fetchone()
        with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = conn.execute(SNAPSHOT_SQL).fetchone()
                if got == expected:
                    break
                time.sleep(0.2)
            assert got == expected, "every entry and block arrived, with its id, txid, origin and time"
            with pytest.raises(SealingRefused, match="seal on its publisher") as refused:
                ledger.seal(conn)
            assert refused.value.sqlstate == "AU008"
        assert expected is not None and expected[1] > 2, "seals ran during the replication"
        _both_verify(replica, "erp", [COMPANY, OTHER])
        with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
            conn.execute("DROP SUBSCRIPTION audit_log")


def test_seal_names_the_prepared_transaction_that_holds_it_back(source: ThrowawayServer) -> None:
    dbname = _installed(source, "two_phase")
    with psycopg.connect(source.conninfo_for(dbname, user=WRITER), autocommit=True) as held:
        held.execute("BEGIN")
        held.execute(RECORD, (COMPANY,))
        held.execute("PREPARE TRANSACTION 'invoice-run-7'")
    try:
        with psycopg.connect(source.conninfo_for(dbname, user=WRITER)) as writer:
            record(writer, COMPANY)  # committed, and waiting on the prepared one
        sealed = audit_py("seal", "--dsn", source.conninfo_for(dbname, user=OWNER),
                          env={"PGOPTIONS": "-c audit.seal_notice_after=0"})
        assert sealed.returncode == 0 and sealed.stdout.strip() == "nothing to seal", sealed.stdout
        assert "1 entries wait" in sealed.stderr and "prepared transaction 'invoice-run-7' in database" \
            f" {dbname}" in sealed.stderr, sealed.stderr
        tail = subprocess.Popen([sys.executable, "-m", "audit_py", "tail", "--follow", "--poll", "0.1",
                                 "--notice-after", "0.3", "--dsn", source.conninfo_for(dbname, user=READER)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(30, tail.kill)  # a tail that never says it ends the read, and fails the test
        watchdog.start()
        try:
            assert tail.stderr is not None
            said = tail.stderr.readline()
        finally:
            watchdog.cancel()
            tail.terminate()
            tail.wait(timeout=10)
        assert said.startswith("audit-py tail: 1 entries wait on transactions still open: prepared transaction"
                               " 'invoice-run-7'"), said
    finally:
        with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
            conn.execute("COMMIT PREPARED 'invoice-run-7'")
    with psycopg.connect(source.conninfo_for(dbname, user=OWNER)) as owner:
        assert [block[2] for block in ledger.seal(owner)] == [2]


def test_a_replica_that_sealed_before_it_subscribed_seals_its_publishers_entries_after_switchover(
        source: ThrowawayServer) -> None:
    """Its own seal ran last: another cluster's entries are found all the same, origin by origin."""
    dbname = _installed(source, "before_switchover")
    with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
        # FOR ALL TABLES, as blue/green tooling makes: the publisher's seals update a published table.
        conn.execute("CREATE PUBLICATION everything FOR ALL TABLES")
        conn.execute("CREATE PUBLICATION two_tables FOR TABLE audit.audit_logs, audit.blocks")
    with psycopg.connect(source.conninfo_for(dbname, user=WRITER)) as writer, \
            psycopg.connect(source.conninfo_for(dbname, user=OWNER)) as owner:
        record(writer, COMPANY)
        assert len(ledger.seal(owner)) == 1
        record(writer, COMPANY)  # left unsealed on the publisher
    with throwaway_server(fsync=False) as replica:
        _create_logins(replica)
        _installed(replica)
        with psycopg.connect(replica.conninfo_for("erp", user=OWNER)) as owner:
            assert ledger.seal(owner) == []  # a cron job, before anyone subscribed
        with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
            conn.execute(f"CREATE SUBSCRIPTION two_tables CONNECTION '{source.conninfo_for(dbname)}'"
                         " PUBLICATION two_tables")  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            while conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone() != (2,):
                assert time.monotonic() < deadline, "the entries arrive"
                time.sleep(0.2)
            while conn.execute("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'").fetchone() != (0,):
                assert time.monotonic() < deadline, "the tables are in sync"
                time.sleep(0.2)
            conn.execute("ALTER SUBSCRIPTION two_tables DISABLE")
            conn.execute("ALTER SUBSCRIPTION two_tables SET (slot_name = NONE)")
            conn.execute("DROP SUBSCRIPTION two_tables")
        with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot('two_tables')")
        with psycopg.connect(replica.conninfo_for("erp", user=WRITER)) as writer, \
                psycopg.connect(replica.conninfo_for("erp", user=OWNER)) as owner:
            record(writer, COMPANY)
            # The publisher's unsealed entry closes its range; the replica's own opens this cluster's.
            assert sorted(block[1:] for block in ledger.seal(owner)) == [(2, 1), (3, 1)]
        _both_verify(replica, "erp", [COMPANY])


def test_verifying_inside_ones_own_writing_transaction(source: ThrowawayServer) -> None:
    """The transaction's own entries have an id its snapshot has not seen given out: they are its own."""
    dbname = _installed(source, "own_transaction")
    with psycopg.connect(source.conninfo_for(dbname)) as conn:
        conn.execute("GRANT audit_writer, audit_reader TO postgres")
    with psycopg.connect(source.conninfo_for(dbname)) as conn:
        conn.execute("SELECT audit.record_audit(%s, 'A', 'e', gen_random_uuid())", (COMPANY,))
        assert ledger.verify(conn, COMPANY).ok
        row = conn.execute("SELECT ok FROM audit.verify(%s)", (COMPANY,)).fetchone()
        assert row == (True,)


def test_another_clusters_entries_wait_while_a_transaction_is_prepared(source: ThrowawayServer) -> None:
    """A two-phase subscription applies a prepared transaction as a prepared one: its entries appear at
    COMMIT PREPARED, after the replica has taken over. Until then, no other cluster's range closes."""
    dbname = _installed(source, "two_phase_subscription")
    with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute("CREATE PUBLICATION audit_log FOR TABLE audit.audit_logs, audit.blocks")
    with throwaway_server(fsync=False, settings={"max_prepared_transactions": "4"}) as replica:
        _create_logins(replica)
        _installed(replica)
        with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
            conn.execute(f"CREATE SUBSCRIPTION audit_log CONNECTION '{source.conninfo_for(dbname)}'"
                         " PUBLICATION audit_log WITH (two_phase = true)")  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            while conn.execute("SELECT subtwophasestate FROM pg_subscription").fetchone() != ("e",):
                assert time.monotonic() < deadline, "two-phase replication is enabled once in sync"
                time.sleep(0.2)
        with psycopg.connect(source.conninfo_for(dbname, user=WRITER), autocommit=True) as writer:
            writer.execute("BEGIN")
            writer.execute(RECORD, (COMPANY,))
            writer.execute("PREPARE TRANSACTION 'invoice-run-8'")
            writer.execute(RECORD, (COMPANY,))  # a later one, committed
        with psycopg.connect(replica.conninfo_for("erp"), autocommit=True) as conn:
            while conn.execute("SELECT (SELECT count(*) FROM pg_prepared_xacts),"
                               " (SELECT count(*) FROM audit.audit_logs)").fetchone() != (1, 1):
                assert time.monotonic() < deadline, "the prepared transaction and the later entry arrive"
                time.sleep(0.2)
            conn.execute("ALTER SUBSCRIPTION audit_log DISABLE")
            conn.execute("ALTER SUBSCRIPTION audit_log SET (slot_name = NONE)")
            conn.execute("DROP SUBSCRIPTION audit_log")
            with psycopg.connect(replica.conninfo_for("erp", user=OWNER)) as owner:
                assert ledger.seal(owner) == [], "the other cluster's entries wait on the prepared transaction"
            gid = conn.execute("SELECT gid FROM pg_prepared_xacts").fetchone()
            assert gid is not None
            conn.execute(f"COMMIT PREPARED '{gid[0]}'")  # type: ignore[arg-type]
            with psycopg.connect(replica.conninfo_for("erp", user=OWNER)) as owner:
                assert [block[1:] for block in ledger.seal(owner)] == [(1, 2)]
        with psycopg.connect(source.conninfo_for(dbname), autocommit=True) as conn:
            conn.execute("COMMIT PREPARED 'invoice-run-8'")
            conn.execute("SELECT pg_drop_replication_slot('audit_log')")
        _both_verify(replica, "erp", [COMPANY])
