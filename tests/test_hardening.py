"""The DDL-refusing event triggers: installed where a superuser applies the migrations, skipped elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from audit_py import migrate, rollback
from audit_py.schema import sql_dir
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER
from .helpers import migration_ids

DDL = {
    "DISABLE TRIGGER": "ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update",
    "ENABLE TRIGGER (origin only)": "ALTER TABLE audit.blocks ENABLE TRIGGER blocks_refuse_delete",
    "DROP TRIGGER": "DROP TRIGGER audit_logs_refuse_delete ON audit.audit_logs",
    "replace a function": "CREATE OR REPLACE FUNCTION audit._refuse_change() RETURNS trigger LANGUAGE plpgsql"
                          " AS $$BEGIN RETURN NEW; END;$$",
    "ALTER FUNCTION": "ALTER FUNCTION audit.seal() RESET search_path",
    "DROP TABLE": "DROP TABLE audit.blocks",
    "DROP SCHEMA": "DROP SCHEMA audit CASCADE",
    "new trigger": "CREATE TRIGGER sneaky BEFORE INSERT ON audit.audit_logs FOR EACH ROW"
                   " EXECUTE FUNCTION audit._stamp_entry()",
    "new rule": "CREATE RULE sneaky AS ON INSERT TO audit.blocks DO INSTEAD NOTHING",
    "new policy": "CREATE POLICY sneaky ON audit.audit_logs USING (false)",
    "row level security": "ALTER TABLE audit.audit_logs ENABLE ROW LEVEL SECURITY",
    "new function": "CREATE FUNCTION audit.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "new overload": "CREATE FUNCTION audit.record_audit(company_id text, action text, entity text, entity_id text)"
                    " RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'",
    "STRICT": "ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) STRICT",
    "change of owner": "ALTER TABLE audit.blocks OWNER TO app_outsider",
    "schema owner": "ALTER SCHEMA audit OWNER TO app_outsider",
    "schema renamed": "ALTER SCHEMA audit RENAME TO audit_old",
    "inheritance child": "CREATE TABLE public.forged () INHERITS (audit.audit_logs)",
    "inherit later": "CREATE TABLE public.forged (LIKE audit.audit_logs INCLUDING ALL);"
                     " ALTER TABLE public.forged INHERIT audit.audit_logs",
    "drop an index": "DROP INDEX audit.audit_idx",
}
LIFT = "SELECT set_config('audit.allow_ddl', pg_current_xact_id()::text, true)"



@pytest.fixture
def hardened(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> str:
    """A database whose migrations a superuser applied."""
    dbname = empty_database(owner=SUPERUSER)
    migrate(pg_server.conninfo_for(dbname))
    return dbname


def test_a_superuser_install_has_the_event_triggers_enabled_always(pg_server: ThrowawayServer, hardened: str) -> None:
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        rows = conn.execute("SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY 1").fetchall()
    assert rows == [("audit_refuse_ddl", "ddl_command_end", "A"), ("audit_refuse_drop", "sql_drop", "A")]


@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica"])
@pytest.mark.parametrize("statement", DDL.values(), ids=DDL.keys())
def test_ddl_on_the_audit_schema_is_refused_even_to_a_superuser(pg_server: ThrowawayServer, hardened: str,
                                                                statement: str, replica: bool) -> None:
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        if replica:
            conn.execute("SET session_replication_role = replica")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement)  # type: ignore[call-overload]
    assert refused.value.sqlstate == "AU003"
    assert "schema audit is protected" in str(refused.value)
    assert "audit.allow_ddl" in (refused.value.diag.message_hint or "")


@pytest.mark.parametrize("statement", DDL.values(), ids=DDL.keys())
def test_a_dba_lifts_the_refusal_for_one_transaction(pg_server: ThrowawayServer, hardened: str,
                                                     statement: str) -> None:
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        conn.execute(LIFT)
        conn.execute(statement)  # type: ignore[call-overload]
        conn.rollback()
        with pytest.raises(psycopg.Error) as refused:  # the next transaction is protected again
            conn.execute(statement)  # type: ignore[call-overload]
        assert refused.value.sqlstate == "AU003"


LIFTS_NOTHING = {
    "SET": "SET audit.allow_ddl = on",
    "SET LOCAL": "SET LOCAL audit.allow_ddl = on",
    "SET to this session's transaction id, then a new one": "SELECT set_config('audit.allow_ddl',"
                                                             " pg_current_xact_id()::text, false); COMMIT",
}


@pytest.mark.parametrize("attempt", LIFTS_NOTHING.values(), ids=LIFTS_NOTHING.keys())
def test_a_setting_that_names_no_transaction_lifts_nothing(pg_server: ThrowawayServer, hardened: str,
                                                           attempt: str) -> None:
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        conn.execute(attempt)  # type: ignore[call-overload]
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(DDL["DISABLE TRIGGER"])
    assert refused.value.sqlstate == "AU003"


@pytest.mark.parametrize("where", ["connection string", "role", "database"])
def test_a_setting_of_the_connection_role_or_database_lifts_nothing(pg_server: ThrowawayServer, hardened: str,
                                                                    where: str) -> None:
    options = {}
    with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
        if where == "role":
            conn.execute("ALTER ROLE postgres SET audit.allow_ddl = on")
        elif where == "database":
            conn.execute(f"ALTER DATABASE {hardened} SET audit.allow_ddl = on")
        else:
            options = {"options": "-c audit.allow_ddl=on"}
    try:
        with psycopg.connect(pg_server.conninfo_for(hardened), **options) as conn:  # type: ignore[arg-type]
            assert conn.execute("SHOW audit.allow_ddl").fetchone() == ("on",)
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(DDL["DROP TRIGGER"])
        assert refused.value.sqlstate == "AU003"
    finally:
        with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres RESET audit.allow_ddl")


def test_ddl_elsewhere_is_not_affected(pg_server: ThrowawayServer, hardened: str) -> None:
    with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int); ALTER TABLE invoices ADD COLUMN n int; DROP TABLE invoices")


def test_a_superuser_rolls_everything_back(pg_server: ThrowawayServer, hardened: str) -> None:
    assert rollback(pg_server.conninfo_for(hardened)) == migration_ids()[::-1]
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_event_trigger").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'").fetchone() == (0,)


def test_a_non_superuser_install_skips_them_with_a_notice(pg_server: ThrowawayServer,
                                                          empty_database: Callable[..., str]) -> None:
    dbname = empty_database()
    notices: list[str] = []
    with psycopg.connect(pg_server.conninfo_for(dbname, user=OWNER), autocommit=True) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        for path in sorted(sql_dir().glob("*.sql")):
            conn.execute(path.read_text())  # type: ignore[call-overload]
        assert conn.execute("SELECT count(*) FROM pg_event_trigger").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the installing login owns nothing
            conn.execute("ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update")
    with psycopg.connect(pg_server.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute("ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update")  # nothing stops it
        conn.execute("GRANT audit_reader TO app_reader")
    with psycopg.connect(pg_server.conninfo_for(dbname, user="app_reader"), autocommit=True) as conn:
        assert conn.execute("SELECT ok FROM audit.verify(gen_random_uuid())").fetchone() == (False,)
    assert any("need a superuser" in notice and "skipped" in notice for notice in notices)


def test_the_refusal_maps_to_protected_schema(pg_server: ThrowawayServer, hardened: str) -> None:
    from audit_py import ProtectedSchema
    from audit_py.errors import translate_errors

    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn, \
            pytest.raises(ProtectedSchema) as refused, translate_errors():
        conn.execute(DDL["DROP TABLE"])
    assert refused.value.sqlstate == "AU003"


def test_the_verifiers_check_the_guard_where_it_was_installed(pg_server: ThrowawayServer, hardened: str) -> None:
    from audit_py import ledger

    def run() -> ledger.Run:
        with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
            return ledger.verify_all(conn)

    def python_and_sql_problems() -> tuple[str, int]:
        with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
            found = conn.execute("SELECT count(*) FROM audit._protection_problems()").fetchone()
        assert found is not None
        return run().verdicts[0].report, found[0]

    clean = run()
    assert clean.exit_code == 0 and "the DDL guard is installed" in clean.verdicts[0].report
    with psycopg.connect(pg_server.conninfo_for(hardened)) as conn:
        digest = ledger.take_digest(conn, clean)
    assert digest["guard"] is True

    with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
        conn.execute("ALTER EVENT TRIGGER audit_refuse_ddl DISABLE")
    report, problems = python_and_sql_problems()
    assert "event trigger audit_refuse_ddl was changed: has 'on ddl_command_end, enabled D" in report and problems == 1

    with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
        conn.execute("DROP EVENT TRIGGER audit_refuse_ddl")
    report, problems = python_and_sql_problems()
    assert "event trigger audit_refuse_ddl is missing" in report and problems == 1

    # Removed whole, it looks like an install that never had it: only the digest remembers.
    with psycopg.connect(pg_server.conninfo_for(hardened), autocommit=True) as conn:
        conn.execute("DROP EVENT TRIGGER audit_refuse_drop; DROP SCHEMA audit_guard CASCADE")
    after = run()
    assert after.exit_code == 0 and "no DDL guard" in after.verdicts[0].report
    assert [v.report for v in ledger.check_digest(after, digest)][0].endswith("it is gone: a superuser removed it.")
