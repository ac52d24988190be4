"""The trust boundary: no role runs its own code with the log's rights, or gains one through schema audit.

Each test plays the role that would try: a writer, a reader, a tenant reader, a login that may only
change a tracked table, and the installing login, whom a schema tool would run as.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from unittest.mock import ANY

import psycopg
import pytest

from audit_py import AuditEntry, AuditService, InvalidEntry, ledger
from audit_py.server import SUPERUSER

from .conftest import OUTSIDER, OWNER, READER, TENANT, WRITER, ConnectAs
from .helpers import INSTALLING_LOGIN_REFUSED, record, set_trap

COMPANY = uuid.uuid4()

TRACKED = """
CREATE TABLE erp.invoices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), company_id uuid NOT NULL, amount numeric);
GRANT USAGE ON SCHEMA erp TO app_outsider;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON erp.invoices TO app_outsider;
SELECT audit.enable_tracking('erp.invoices');
"""


@pytest.fixture
def tracked(connect_as: ConnectAs) -> None:
    connect_as(WRITER).execute(  # something to seal, verify and read
        "SELECT audit.record_audit(%s, 'A', 'e', gen_random_uuid(), user_id => gen_random_uuid())", (COMPANY,))
    connect_as(WRITER).commit()
    superuser = connect_as("postgres", autocommit=True)
    superuser.execute(f"CREATE SCHEMA erp AUTHORIZATION {OWNER}")
    superuser.execute(f"GRANT audit_writer TO {OWNER}")
    connect_as(OWNER, autocommit=True).execute(TRACKED)  # type: ignore[call-overload]
    superuser.execute(f"SELECT audit.pin_tenant('{TENANT}', %s)", (COMPANY,))


CALLS: dict[str, tuple[str, list[str]]] = {
    "record_audit": (WRITER, ["SELECT audit.record_audit(%(c)s, 'A', 'e', gen_random_uuid(), '{\"n\": 1}',"
                              " gen_random_uuid(), gen_random_uuid())"]),
    "record_audit with a context": (WRITER, [
        "SELECT audit.set_context(gen_random_uuid(), %(c)s, gen_random_uuid(), '{\"request\": \"r\"}')",
        "SELECT audit.record_audit(NULL, 'A', 'e', gen_random_uuid())"]),
    "record_audit_many": (WRITER, ["SELECT audit.record_audit_many(ARRAY[%(c)s]::uuid[], '{A}', '{e}',"
                                   " ARRAY[gen_random_uuid()], '{\"{}\"}')"]),
    "enable and disable tracking": (OWNER, ["SELECT audit.enable_tracking('erp.invoices', 'bill')",
                                            "SELECT audit.disable_tracking('erp.invoices')"]),
    "a tracked INSERT, UPDATE, DELETE": (OUTSIDER, [
        "SELECT set_config('audit.user_id', gen_random_uuid()::text, true),"
        " set_config('audit.context', '{\"request\": \"r\"}', true)",
        "INSERT INTO erp.invoices (company_id, amount) VALUES (%(c)s, 1)",
        "UPDATE erp.invoices SET amount = 2", "DELETE FROM erp.invoices"]),
    "verify": (READER, ["SELECT * FROM audit.verify(%(c)s)"]),
    "digest": (READER, ["SELECT audit.digest()"]),
    "search and history": (READER, ["SELECT * FROM audit.search(%(c)s, since => now() - interval '1 day')",
                                    "SELECT * FROM audit.history('e', gen_random_uuid())"]),
    "the tenant policies": (TENANT, ["SELECT audit.set_context(company_id => %(c)s)",
                                     "SELECT count(*) FROM audit.audit_logs", "SELECT count(*) FROM audit.blocks",
                                     "SELECT * FROM audit.search(%(c)s)"]),
    "seal, pins and strict mode": (OWNER, ["SELECT * FROM audit.seal()",
                                           f"SELECT audit.pin_tenant('{TENANT}', gen_random_uuid())",
                                           "SELECT audit.enable_strict_mode('app_reader')",
                                           "SELECT audit.disable_strict_mode('app_reader')"]),
}


@pytest.mark.usefixtures("tracked")
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_temporary_types_never_run_the_callers_code_with_the_logs_rights(connect_as: ConnectAs,
                                                                          call: tuple[str, list[str]]) -> None:
    role, statements = call
    conn = connect_as(role)
    set_trap(conn)
    for statement in statements:
        conn.execute(statement, {"c": COMPANY})  # type: ignore[call-overload]
    conn.commit()


def test_the_trap_does_catch_a_function_that_leaves_pg_temp_first(connect_as: ConnectAs) -> None:
    """The test above can fail: a SECURITY DEFINER function with search_path = '' falls into the trap."""
    superuser = connect_as("postgres", autocommit=True)
    superuser.execute("CREATE FUNCTION public.naive() RETURNS text LANGUAGE plpgsql SECURITY DEFINER"
                      " SET search_path = '' AS $$DECLARE v uuid := pg_catalog.gen_random_uuid();"
                      " BEGIN RETURN v::pg_catalog.text; END$$")
    writer = connect_as(WRITER)
    set_trap(writer)
    with pytest.raises(psycopg.Error, match="HIJACKED: the caller's code ran as postgres"):
        writer.execute("SELECT public.naive()")


# A cast of one's own to json or jsonb, which to_jsonb() of a row calls for a column of that type.
CAST_TYPES = {
    "enum": ("CREATE TYPE erp.mood AS ENUM ('calm', 'angry')", "erp.mood", "erp.mood", "'calm'"),
    "domain over an enum": ("CREATE TYPE erp.mood AS ENUM ('calm', 'angry'); CREATE DOMAIN erp.mood_d AS erp.mood",
                            "erp.mood_d", "erp.mood", "'calm'"),
    "range": ("CREATE TYPE erp.span AS RANGE (subtype = int4)", "erp.span", "erp.span", "'[1,2)'"),
}
EVIL_CAST = """
CREATE FUNCTION erp.evil({source}) RETURNS {target} LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> session_user THEN
        RAISE EXCEPTION 'HIJACKED: the cast ran as %', current_user;
    END IF;
    RETURN pg_catalog.to_json($1::text)::{target};
END $$;
CREATE CAST ({source} AS {target}) WITH FUNCTION erp.evil({source});
"""


def _schema_of(connect_as: ConnectAs, owner: str) -> psycopg.Connection[Any]:
    connect_as("postgres", autocommit=True).execute(f"CREATE SCHEMA erp AUTHORIZATION {owner}")
    return connect_as(owner, autocommit=True)


@pytest.mark.parametrize("target", ["json", "jsonb"])
@pytest.mark.parametrize("kind", CAST_TYPES.values(), ids=CAST_TYPES.keys())
def test_a_cast_of_ones_own_never_runs_and_the_column_is_recorded_as_its_text(
        connect_as: ConnectAs, kind: tuple[str, ...], target: str) -> None:
    """A writer tracking its own table, with a cast to json of a column's type."""
    make_type, column_type, cast_source, value = kind
    writer = _schema_of(connect_as, WRITER)
    writer.execute(f"{make_type}; CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, x {column_type})")
    writer.execute(EVIL_CAST.format(source=cast_source, target=target))  # type: ignore[call-overload]
    writer.execute("SELECT audit.enable_tracking('erp.things')")
    writer.execute(f"INSERT INTO erp.things VALUES (gen_random_uuid(), %s, {value})", (COMPANY,))
    writer.execute("UPDATE erp.things SET x = NULL")
    writer.execute("DELETE FROM erp.things")
    rows = dict(connect_as(READER).execute("SELECT action, details FROM audit.audit_logs").fetchall())
    text = value.strip("'")
    assert rows["CREATE_THING"]["x"] == text
    assert rows["UPDATE_THING"] == {"x": {"old": text, "new": None}}
    assert rows["DELETE_THING"]["x"] is None


def test_a_table_owner_without_audit_roles_cannot_run_a_cast_on_a_table_the_dba_tracks(
        connect_as: ConnectAs) -> None:
    outsider = _schema_of(connect_as, OUTSIDER)
    outsider.execute("CREATE TYPE erp.mood AS ENUM ('calm'); CREATE TABLE erp.things"
                     " (id uuid PRIMARY KEY, company_id uuid, x erp.mood, tags erp.mood[])")
    connect_as("postgres", autocommit=True).execute("SELECT audit.enable_tracking('erp.things')")
    outsider.execute(EVIL_CAST.format(source="erp.mood", target="json"))  # type: ignore[call-overload]
    outsider.execute(EVIL_CAST.format(source="erp.mood[]", target="jsonb")  # type: ignore[call-overload]
                     .replace("erp.evil", "erp.evil_array"))
    outsider.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 'calm', '{calm}')", (COMPANY,))
    outsider.execute("UPDATE erp.things SET tags = '{calm,calm}'")
    outsider.execute("DELETE FROM erp.things")
    details = connect_as(READER).execute("SELECT details FROM audit.audit_logs ORDER BY action").fetchall()
    assert [row[0].get("tags") for row in details] == ["{calm}", "{calm,calm}", {"old": "{calm}", "new": "{calm,calm}"}]


def test_a_cast_made_after_a_repeatable_read_snapshot_never_runs(connect_as: ConnectAs) -> None:
    """The snapshot does not see the cast; the serialization does not use it either."""
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TYPE erp.mood AS ENUM ('calm');"
                   " CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, x erp.mood);"
                   " SELECT audit.enable_tracking('erp.things')")
    victim = connect_as(WRITER)
    victim.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    victim.execute("SELECT 1")
    writer.execute(EVIL_CAST.format(source="erp.mood", target="json"))  # type: ignore[call-overload]
    victim.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 'calm')", (COMPANY,))
    victim.commit()
    assert connect_as(READER).execute("SELECT details->>'x' FROM audit.audit_logs").fetchone() == ("calm",)


def test_a_table_changed_after_a_repeatable_read_snapshot_runs_no_cast_and_loses_no_column(
        connect_as: ConnectAs) -> None:
    """The snapshot describes the table as it was; each value's type and each row's columns are checked."""
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TYPE erp.mood AS ENUM ('calm');"
                   " CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, x text, secret text);"
                   " SELECT audit.enable_tracking('erp.things', exclude_columns => '{secret}')")
    writer.execute(EVIL_CAST.format(source="erp.mood", target="json"))  # type: ignore[call-overload]

    def after(change: str) -> psycopg.Connection[Any]:
        victim = connect_as(WRITER)
        victim.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        victim.execute("SELECT 1")  # the snapshot, before the change
        writer.execute(change)  # type: ignore[call-overload]
        return victim

    # A column retyped to one with a cast of its own: written as its text.
    victim = after("ALTER TABLE erp.things ALTER COLUMN x TYPE erp.mood USING x::erp.mood")
    victim.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 'calm', 's')", (COMPANY,))
    victim.commit()
    assert connect_as(READER).execute("SELECT details FROM audit.audit_logs").fetchone() == (
        {"id": ANY, "company_id": str(COMPANY), "x": "calm"},)
    # A column the snapshot does not know, or no longer has, or knows by another name (an excluded
    # one would reach the log under its new name): refused.
    for change, row in [("ALTER TABLE erp.things RENAME COLUMN secret TO secret_hash", "'calm', 'TOP-SECRET'"),
                        ("ALTER TABLE erp.things ADD COLUMN y erp.mood", "'calm', 's', 'calm'"),
                        # Added and dropped after the real one: the column count is as it was.
                        ("ALTER TABLE erp.things ADD COLUMN spare int; ALTER TABLE erp.things ADD COLUMN z erp.mood;"
                         " ALTER TABLE erp.things DROP COLUMN spare", "'calm', 's', 'calm', 'calm'"),
                        ("ALTER TABLE erp.things RENAME COLUMN x TO xx", "'calm', 's', 'calm', 'calm'"),
                        ("ALTER TABLE erp.things DROP COLUMN z", "'calm', 's', 'calm'")]:
        victim = after(change)
        with pytest.raises(psycopg.Error) as refused:
            victim.execute(f"INSERT INTO erp.things VALUES (gen_random_uuid(), %s, {row})", (COMPANY,))
        assert refused.value.sqlstate == "AU004", (change, refused.value)
        assert "changed after this transaction's snapshot" in str(refused.value)


def test_another_logins_temporary_cast_does_not_stop_tracking(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TYPE erp.mood AS ENUM ('calm');"
                   " CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, x erp.mood);"
                   " SELECT audit.enable_tracking('erp.things')")
    outsider = connect_as(OUTSIDER, autocommit=True)
    outsider.execute("CREATE TYPE pg_temp.e AS ENUM ('x');"
                     " CREATE FUNCTION pg_temp.f(pg_temp.e) RETURNS json LANGUAGE sql AS 'SELECT NULL::json';"
                     " CREATE CAST (pg_temp.e AS json) WITH FUNCTION pg_temp.f(pg_temp.e)")
    writer.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 'calm')", (COMPANY,))
    assert connect_as(READER).execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (1,)


TRIGGERS_WITHOUT_THEIR_TABLES = {
    "no REFERENCING": ("AFTER INSERT OR UPDATE ON erp.plain FOR EACH STATEMENT",
                       ["INSERT INTO erp.plain VALUES (gen_random_uuid(), %s)",
                        "UPDATE erp.plain SET company_id = %s"]),
    "no old table for an UPDATE": ("AFTER UPDATE ON erp.plain REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT",
                                   ["UPDATE erp.plain SET company_id = %s"]),
    "a row trigger": ("AFTER INSERT ON erp.plain REFERENCING NEW TABLE AS audit_new FOR EACH ROW",
                      ["INSERT INTO erp.plain VALUES (gen_random_uuid(), %s)"]),
}
TRACKING_CONFIG = ('{"entity": "x", "action_suffix": "X", "key_attnum": 1, "exclude_columns": [],'
                   ' "exclude_attnums": []}')


@pytest.mark.parametrize("case", TRIGGERS_WITHOUT_THEIR_TABLES.values(), ids=TRIGGERS_WITHOUT_THEIR_TABLES.keys())
def test_a_tracking_trigger_without_its_transition_tables_never_reads_the_callers_view(
        connect_as: ConnectAs, case: tuple[str, list[str]]) -> None:
    timing, statements = case
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.plain (id uuid PRIMARY KEY, company_id uuid)")
    writer.execute(f"CREATE TRIGGER sneaky {timing} EXECUTE FUNCTION audit._track_changes('{TRACKING_CONFIG}')")
    writer.execute("CREATE FUNCTION pg_temp.whoami() RETURNS uuid LANGUAGE plpgsql AS $$BEGIN"
                   " IF current_user <> session_user THEN RAISE EXCEPTION 'HIJACKED as %', current_user; END IF;"
                   " RETURN gen_random_uuid(); END$$")
    for name in ("audit_new", "audit_old"):
        writer.execute(f"CREATE TEMP VIEW {name} AS SELECT pg_temp.whoami() AS id, pg_temp.whoami() AS company_id")
        writer.execute(f"GRANT SELECT ON pg_temp.{name} TO audit_definer")
    for statement in statements:
        with pytest.raises(psycopg.Error) as refused:
            writer.execute(statement, (COMPANY,))
        assert refused.value.sqlstate == "AU004" and "HIJACKED" not in str(refused.value), refused.value
        writer.execute("ALTER TABLE erp.plain DISABLE TRIGGER sneaky; INSERT INTO erp.plain VALUES"
                       " (gen_random_uuid(), gen_random_uuid()); ALTER TABLE erp.plain ENABLE TRIGGER sneaky")


def test_tracked_tables_tells_a_trigger_that_no_longer_records(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid);"
                   " SELECT audit.enable_tracking('erp.things')")
    in_place = "SELECT triggers_in_place FROM audit.tracked_tables"
    assert writer.execute(in_place).fetchone() == (True,)
    for change in ("ALTER TABLE erp.things ENABLE REPLICA TRIGGER audit_track_insert",
                   "DROP TRIGGER audit_track_update ON erp.things; CREATE TRIGGER audit_track_update AFTER UPDATE"
                   " ON erp.things FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION audit._refuse_truncate()",
                   "DROP TRIGGER audit_track_delete ON erp.things; CREATE TRIGGER audit_track_delete AFTER DELETE"
                   " ON erp.things FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_truncate()"):
        writer.execute(change)  # type: ignore[call-overload]
        assert writer.execute(in_place).fetchone() == (False,), change
        writer.execute("SELECT audit.enable_tracking('erp.things')")
        assert writer.execute(in_place).fetchone() == (True,)


@pytest.mark.parametrize("bypass, undo", [
    ("CREATE TABLE erp.parent (id uuid, company_id uuid); ALTER TABLE erp.things INHERIT erp.parent",
     "ALTER TABLE erp.things NO INHERIT erp.parent"),
    ("CREATE TABLE erp.parent (id uuid, company_id uuid) PARTITION BY LIST (company_id);"
     " ALTER TABLE erp.parent ATTACH PARTITION erp.things DEFAULT",
     "ALTER TABLE erp.parent DETACH PARTITION erp.things"),
])
def test_tracked_tables_tells_a_table_whose_writes_through_a_parent_go_unrecorded(
        connect_as: ConnectAs, bypass: str, undo: str) -> None:
    """Its owner makes a tracked table a child or a partition of a table of its own: writes through that
    parent fire none of the tracked table's triggers. They cannot be refused; tracked_tables says so."""
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid);"
                   " SELECT audit.enable_tracking('erp.things')")
    writer.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), gen_random_uuid())")
    in_place = "SELECT triggers_in_place FROM audit.tracked_tables"
    writer.execute(bypass)  # type: ignore[call-overload]
    assert writer.execute("UPDATE erp.parent SET company_id = gen_random_uuid()").rowcount == 1
    assert connect_as(READER).execute("SELECT action FROM audit.audit_logs").fetchall() == [("CREATE_THING",)]
    assert writer.execute(in_place).fetchone() == (False,)
    assert connect_as(READER).execute(in_place).fetchone() == (False,)
    writer.execute(undo)  # type: ignore[call-overload]
    assert writer.execute(in_place).fetchone() == (True,)


# Columns named like the trigger's own aliases, variables and transition tables.
ODD_COLUMNS = ["t", "old", "new", "audit_new", "audit_old", "j", "position", "new_row", "changes", "name",
               "entity", "action", "config", "excluded", "visible", "operation", "key_column"]


def test_columns_of_any_name_are_tracked(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    columns = ", ".join(f'"{name}" text' for name in ODD_COLUMNS)
    writer.execute(f"CREATE TABLE erp.odd (id uuid PRIMARY KEY, company_id uuid, {columns})")
    writer.execute("SELECT audit.enable_tracking('erp.odd')")
    names = ", ".join(f'"{name}"' for name in ODD_COLUMNS)
    values = ", ".join(f"'{name}-1'" for name in ODD_COLUMNS)
    writer.execute(f"INSERT INTO erp.odd (id, company_id, {names}) VALUES (gen_random_uuid(), %s, {values})",
                   (COMPANY,))
    writer.execute("UPDATE erp.odd SET t = 't-2', \"new\" = 'new-2'")
    writer.execute("DELETE FROM erp.odd")
    rows = dict(connect_as(READER).execute("SELECT action, details FROM audit.audit_logs").fetchall())
    assert {name: rows["CREATE_ODD"][name] for name in ODD_COLUMNS} == {name: f"{name}-1" for name in ODD_COLUMNS}
    assert rows["UPDATE_ODD"] == {"t": {"old": "t-1", "new": "t-2"}, "new": {"old": "new-1", "new": "new-2"}}
    assert rows["DELETE_ODD"]["t"] == "t-2"


UNTRACKABLE = {
    "partitioned": ("CREATE TABLE erp.p (id uuid, company_id uuid, n int, PRIMARY KEY (id, n)) PARTITION BY RANGE (n);"
                    " CREATE TABLE erp.p1 PARTITION OF erp.p FOR VALUES FROM (0) TO (10)", "erp.p", "is partitioned"),
    "a partition": ("CREATE TABLE erp.p (id uuid, company_id uuid, n int) PARTITION BY RANGE (n);"
                    " CREATE TABLE erp.p1 (id uuid PRIMARY KEY, company_id uuid, n int);"
                    " ALTER TABLE erp.p ATTACH PARTITION erp.p1 FOR VALUES FROM (0) TO (10)",
                    "erp.p1", "is a partition"),
    "an inheritance parent": ("CREATE TABLE erp.parent (id uuid PRIMARY KEY, company_id uuid);"
                              " CREATE TABLE erp.child () INHERITS (erp.parent)", "erp.parent", "inheritance children"),
    "an inheritance child": ("CREATE TABLE erp.parent (id uuid, company_id uuid);"
                             " CREATE TABLE erp.child (id uuid PRIMARY KEY) INHERITS (erp.parent)",
                             "erp.child", "inherits from another table"),
}


@pytest.mark.parametrize("case", UNTRACKABLE.values(), ids=UNTRACKABLE.keys())
def test_enable_tracking_refuses_what_it_could_not_record_whole(connect_as: ConnectAs,
                                                                case: tuple[str, str, str]) -> None:
    ddl, table, why = case
    writer = _schema_of(connect_as, WRITER)
    writer.execute(ddl)  # type: ignore[call-overload]
    with pytest.raises(psycopg.Error) as refused:
        writer.execute("SELECT audit.enable_tracking(%s)", (table,))
    assert refused.value.sqlstate == "AU004" and why in str(refused.value)
    assert refused.value.diag.column_name == "table_name"


def test_a_tracked_table_that_gains_a_child_refuses_writes_until_tracking_is_fixed(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.parent (id uuid PRIMARY KEY, company_id uuid);"
                   " SELECT audit.enable_tracking('erp.parent');"
                   " CREATE TABLE erp.child () INHERITS (erp.parent)")
    for statement in ("INSERT INTO erp.parent VALUES (gen_random_uuid(), gen_random_uuid())",
                      "UPDATE erp.parent SET company_id = company_id", "DELETE FROM erp.parent"):
        with pytest.raises(psycopg.Error) as refused:
            writer.execute(statement)  # type: ignore[call-overload]
        assert refused.value.sqlstate == "AU004" and "inheritance children" in str(refused.value)


@pytest.mark.parametrize("statement", INSTALLING_LOGIN_REFUSED)
def test_the_installing_login_cannot_alter_the_log_as_a_schema_tool_would(connect_as: ConnectAs,
                                                                            statement: str) -> None:
    """What drizzle-kit push and Alembic autogenerate proposed, run with the application's DATABASE_URL."""
    conn = connect_as(OWNER)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)  # type: ignore[call-overload]


def test_any_login_holding_the_old_advisory_lock_does_not_stop_sealing(connect_as: ConnectAs) -> None:
    record(connect_as(WRITER), COMPANY)
    outsider = connect_as(OUTSIDER)
    outsider.execute("SELECT pg_advisory_lock(6467206942688935610)")
    sealer = connect_as(OWNER)
    sealer.execute("SET lock_timeout = '5s'")
    assert [block[2] for block in ledger.seal(sealer)] == [1]


@pytest.mark.parametrize("statement", ["LOCK TABLE audit.seal_lock IN ACCESS SHARE MODE",
                                       "SELECT * FROM audit.seal_lock FOR UPDATE",
                                       "UPDATE audit.seal_lock SET seal_count = 0",
                                       "LOCK TABLE audit.blocks IN SHARE ROW EXCLUSIVE MODE",
                                       "SELECT pg_catalog.pg_advisory_xact_lock(1)"])
@pytest.mark.parametrize("role", [WRITER, READER, TENANT, OUTSIDER, OWNER])
def test_nobody_but_the_function_role_can_hold_the_turn_of_sealing(connect_as: ConnectAs, role: str,
                                                                   statement: str) -> None:
    conn = connect_as(role)
    if "advisory" in statement:  # anyone may take an advisory lock: sealing no longer waits on one
        conn.execute(statement)
        return
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)  # type: ignore[call-overload]


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_seal_waiting_its_turn_at_a_strict_isolation_level_seals_nothing_and_does_not_fail(
        connect_as: ConnectAs, isolation: str) -> None:
    writer = connect_as(WRITER)
    record(writer, COMPANY)
    first, second = connect_as(OWNER), connect_as(OWNER)
    notices: list[str] = []
    second.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
    first.execute("SELECT * FROM audit.seal()")  # holds the turn until it commits
    second.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    second.execute("SELECT 1")  # its snapshot, taken before the first seal commits
    result: list[Any] = []
    waiting = threading.Thread(target=lambda: result.append(second.execute("SELECT * FROM audit.seal()").fetchall()))
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive(), "the second seal waits its turn"
    first.commit()
    waiting.join(10)
    assert result == [[]]
    assert any("another seal committed" in notice for notice in notices)
    second.commit()
    record(writer, COMPANY)
    assert [block[1:] for block in ledger.seal(second)] == [(2, 1)]
    assert ledger.verify(connect_as(READER), COMPANY).ok


def test_python_service_keeps_working_for_the_writer(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    set_trap(writer)
    audit = AuditService(writer)
    with audit.context(user_id=uuid.uuid4(), request="r"):
        audit.record(COMPANY, "A", "e", uuid.uuid4(), {"n": 1})
        audit.record_many([AuditEntry(COMPANY, "B", "e", uuid.uuid4())])
    writer.commit()



def test_a_domain_over_a_built_in_type_keeps_its_json_beside_an_enum(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TYPE erp.mood AS ENUM ('calm');"
                   " CREATE DOMAIN erp.money AS numeric(12, 2) CHECK (VALUE >= 0);"
                   " CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, m erp.mood, amount erp.money,"
                   " tags text[]); SELECT audit.enable_tracking('erp.things')")
    writer.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 'calm', 12.50, '{a,b}')", (COMPANY,))
    details = connect_as(READER).execute("SELECT details::text FROM audit.audit_logs").fetchone()
    assert details is not None and '"m": "calm"' in details[0] and '"amount": 12.50' in details[0]
    assert '"tags": ["a", "b"]' in details[0]


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
def test_a_trigger_with_its_transition_tables_swapped_records_nothing(connect_as: ConnectAs, isolation: str) -> None:
    """A table owner with audit_writer makes old rows pass for new ones: the change would be recorded backwards."""
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, amount int);"
                   " SELECT audit.enable_tracking('erp.things');"
                   " INSERT INTO erp.things VALUES (gen_random_uuid(), gen_random_uuid(), 8)")
    outsider = connect_as(WRITER)
    outsider.execute(f"BEGIN ISOLATION LEVEL {isolation}")
    outsider.execute("SELECT 1")
    writer.execute("DROP TRIGGER audit_track_update ON erp.things; CREATE TRIGGER audit_track_update AFTER UPDATE"
                   " ON erp.things REFERENCING OLD TABLE AS audit_new NEW TABLE AS audit_old FOR EACH STATEMENT"
                   f" EXECUTE FUNCTION audit._track_changes('{TRACKING_CONFIG}')")
    with pytest.raises(psycopg.Error) as refused:
        outsider.execute("UPDATE erp.things SET amount = 100")
    assert refused.value.sqlstate == "AU004" and "not a trigger audit.enable_tracking() made" in str(refused.value)


@pytest.mark.parametrize("change", ['ALTER TABLE erp.things DROP COLUMN "to_jsonb"',
                                    'ALTER TABLE erp.things RENAME COLUMN "to_jsonb" TO plain'])
def test_a_column_named_like_a_function_and_gone_since_the_snapshot_calls_nothing(connect_as: ConnectAs,
                                                                                  change: str) -> None:
    """t.to_jsonb, once no column has that name, would read as to_jsonb(t): the whole row through the cast."""
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TYPE erp.mood AS ENUM ('calm');"
                   ' CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, x erp.mood, "to_jsonb" text);'
                   " SELECT audit.enable_tracking('erp.things')")
    writer.execute(EVIL_CAST.format(source="erp.mood", target="json"))  # type: ignore[call-overload]
    victim = connect_as(OUTSIDER)
    connect_as("postgres", autocommit=True).execute("GRANT USAGE ON SCHEMA erp TO app_outsider;"
                                                    " GRANT INSERT ON erp.things TO app_outsider")
    victim.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    victim.execute("SELECT 1")
    writer.execute(change)  # type: ignore[call-overload]
    with pytest.raises(psycopg.Error) as refused:
        victim.execute("INSERT INTO erp.things (id, company_id, x) VALUES (gen_random_uuid(), %s, 'calm')",
                       (COMPANY,))
    assert refused.value.sqlstate == "AU004" and "HIJACKED" not in str(refused.value), refused.value
    assert connect_as(READER).execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (0,)


def test_an_entry_that_would_print_too_large_to_seal_is_refused(connect_as: ConnectAs) -> None:
    """A few stored bytes can print as a gigabyte, which every later seal would fail to hash."""
    writer = connect_as(WRITER)
    with pytest.raises(InvalidEntry) as refused:
        AuditService(writer).record(COMPANY, "A", "e", uuid.uuid4(), {"x": "\x01" * 200_000})  # six bytes each
    assert (refused.value.sqlstate, refused.value.parameter) == ("23514", "details")
    writer.rollback()
    owner = _schema_of(connect_as, WRITER)
    owner.execute("CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid);"
                  " SELECT audit.enable_tracking('erp.things')")
    outsider = connect_as(OUTSIDER)
    connect_as("postgres", autocommit=True).execute("GRANT USAGE ON SCHEMA erp TO app_outsider;"
                                                    " GRANT INSERT ON erp.things TO app_outsider")
    outsider.execute("SELECT set_config('audit.context', %s, true)",
                     ('{"r": [' + ", ".join(["1e131071"] * 10) + "]}",))
    with pytest.raises(psycopg.errors.CheckViolation) as violated:
        outsider.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s)", (COMPANY,))
    assert violated.value.diag.constraint_name == "audit_logs_context_printable"
    outsider.rollback()
    record(connect_as(WRITER), COMPANY)
    assert [block[1:] for block in ledger.seal(connect_as(OWNER))] == [(1, 1)]


def test_the_writers_output_settings_do_not_change_what_tracking_records(connect_as: ConnectAs) -> None:
    writer = _schema_of(connect_as, WRITER)
    writer.execute("CREATE TABLE erp.things (id uuid PRIMARY KEY, company_id uuid, price float8, during tstzrange,"
                   " took interval, raw bytea); SELECT audit.enable_tracking('erp.things')")
    writer.execute("SET extra_float_digits = -15; SET DateStyle = 'SQL, DMY'; SET TimeZone = 'XYZ+7';"
                   " SET IntervalStyle = 'sql_standard'; SET bytea_output = 'escape'")
    writer.execute("INSERT INTO erp.things VALUES (gen_random_uuid(), %s, 123456.789,"
                   " '[2020-04-03 10:00+00, 2020-05-01 00:00+00)', '1 day 2 hours', '\\x0102')", (COMPANY,))
    details = connect_as(READER).execute("SELECT details FROM audit.audit_logs").fetchone()
    assert details is not None
    assert details[0]["price"] == 123456.789
    assert details[0]["during"] == '["2020-04-03 10:00:00+00","2020-05-01 00:00:00+00")'
    assert (details[0]["took"], details[0]["raw"]) == ("1 day 02:00:00", "\\x0102")


def test_pg_write_all_data_cannot_touch_the_configuration(connect_as: ConnectAs) -> None:
    """A predefined role a DBA may grant an application writes every table, but not through row-level security."""
    owner = connect_as(OWNER, autocommit=True)
    owner.execute("SELECT audit.enable_strict_mode()")
    owner.execute("SELECT audit.pin_tenant(%s, gen_random_uuid())", (TENANT,))
    superuser = connect_as(SUPERUSER, autocommit=True)
    superuser.execute(f"GRANT pg_write_all_data TO {WRITER}")
    try:
        writer = connect_as(WRITER, autocommit=True)
        for table in ("strict_mode", "tenant_logins", "seal_lock"):
            assert writer.execute(f"DELETE FROM audit.{table}").rowcount == 0, table
        assert writer.execute("UPDATE audit.seal_lock SET seal_count = 0").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # row-level security: no policy lets it insert
            writer.execute("INSERT INTO audit.tenant_logins VALUES (%s::regrole, gen_random_uuid())", (WRITER,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)"
                           " VALUES (gen_random_uuid(), 'A', 'e', gen_random_uuid(), '{}')")
    finally:
        superuser.execute(f"REVOKE pg_write_all_data FROM {WRITER}")
    counts = superuser.execute("SELECT (SELECT count(*) FROM audit.strict_mode),"
                               " (SELECT count(*) FROM audit.tenant_logins), (SELECT count(*) FROM audit.seal_lock)"
                               ).fetchone()
    assert counts == (1, 1, 1)
    assert ledger.seal(owner) == []  # sealing still takes its turn
