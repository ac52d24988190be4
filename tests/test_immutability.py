"""Once written, an entry is never changed or removed: each role tries, and is refused."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from audit_py.server import SUPERUSER

from .conftest import FUNCTION_ROLE, OUTSIDER, OWNER, OWNING_ROLE, READER, WRITER, ConnectAs
from .helpers import count_entries, record

TAMPERING = {
    "UPDATE": "UPDATE audit.audit_logs SET details = '{\"amount\": 0}'",
    "UPDATE one column of one row": "UPDATE audit.audit_logs SET action = 'NOTHING'"
                                    " WHERE id = (SELECT min(id::text)::uuid FROM audit.audit_logs)",
    "DELETE": "DELETE FROM audit.audit_logs",
    "TRUNCATE": "TRUNCATE audit.audit_logs",
    "TRUNCATE ... CASCADE": "TRUNCATE audit.audit_logs CASCADE",
    "MERGE": """MERGE INTO audit.audit_logs t USING (SELECT 1) s ON true
                WHEN MATCHED THEN UPDATE SET action = 'X'""",
}


@pytest.fixture
def seeded(connect_as: ConnectAs) -> int:
    writer = connect_as(WRITER)
    for _ in range(3):
        record(writer)
    return 3


def _attempt(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    conn.rollback()
    return refused.value


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
@pytest.mark.parametrize("role", [OWNING_ROLE, SUPERUSER])
def test_owner_and_superuser_are_refused_by_the_triggers(connect_as: ConnectAs, seeded: int,
                                                         role: str, statement: str) -> None:
    conn = connect_as(role)
    error = _attempt(conn, statement)
    assert error.sqlstate == "AU001"
    assert "audit.audit_logs" in str(error) and "not allowed" in str(error)
    assert count_entries(connect_as(SUPERUSER)) == seeded


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
# The installing login owns nothing, and the function role may only insert.
@pytest.mark.parametrize("role", [WRITER, READER, OUTSIDER, OWNER, FUNCTION_ROLE])
def test_applications_are_refused_by_privileges(connect_as: ConnectAs, seeded: int, role: str, statement: str) -> None:
    error = _attempt(connect_as(role), statement)
    assert error.sqlstate == "42501"  # insufficient_privilege
    assert count_entries(connect_as(SUPERUSER)) == seeded


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "TRUNCATE"])
def test_refusal_names_the_operation_and_table(connect_as: ConnectAs, seeded: int, operation: str) -> None:
    error = _attempt(connect_as(OWNING_ROLE), TAMPERING[operation])
    assert str(error).startswith(f"{operation} on audit.audit_logs is not allowed")


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
def test_replication_role_does_not_skip_the_triggers(connect_as: ConnectAs, seeded: int, statement: str) -> None:
    superuser = connect_as(SUPERUSER)
    superuser.execute("SET session_replication_role = replica")
    error = _attempt(superuser, statement)
    assert error.sqlstate == "AU001"
    superuser.execute("SET session_replication_role = replica")
    assert count_entries(superuser) == seeded


def test_every_protective_trigger_is_enabled_always(connect_as: ConnectAs) -> None:
    """The refusals fire in replication sessions too; the stamp does not, so that a subscriber keeps its
    publisher's entries as they are (tests/test_portability.py)."""
    rows = connect_as(SUPERUSER).execute(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit.audit_logs'::regclass AND NOT tgisinternal"
        " ORDER BY tgname").fetchall()
    assert rows == [("audit_logs_refuse_delete", "A"), ("audit_logs_refuse_truncate", "A"),
                    ("audit_logs_refuse_update", "A"), ("audit_logs_stamp", "O")]


@pytest.mark.parametrize("role", [OWNING_ROLE, FUNCTION_ROLE, WRITER])
def test_only_a_superuser_may_act_as_a_replication_session(connect_as: ConnectAs, role: str) -> None:
    """The one way past the stamp short of disabling it, which a superuser can do anyway."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        connect_as(role).execute("SET session_replication_role = replica")


@pytest.mark.parametrize("role", [OWNING_ROLE, SUPERUSER])
def test_a_direct_insert_cannot_pick_its_id_or_back_date_itself(connect_as: ConnectAs, role: str) -> None:
    conn = connect_as(role)
    forged_id = uuid.uuid4()
    row = conn.execute(
        "INSERT INTO audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at)"
        " VALUES (%s, gen_random_uuid(), 'CREATE_INVOICE', 'invoice', gen_random_uuid(), '{}', '2001-01-01')"
        " RETURNING id, created_at, created_at = now()", (forged_id,)).fetchone()
    conn.commit()
    assert row is not None
    stored_id, created_at, is_transaction_time = row
    assert stored_id != forged_id
    assert created_at.year != 2001 and is_transaction_time


@pytest.mark.parametrize("column", ["id", "created_at", "txid", "origin"])
def test_the_recording_functions_role_may_not_name_a_stamp_column(connect_as: ConnectAs, column: str) -> None:
    """audit_definer's inserts skip the stamp trigger: the columns' defaults stamp them, and naming a
    stamp column is refused, so that no code running as it (a recording function, tracking) chooses one."""
    definer = connect_as(FUNCTION_ROLE)
    value = {"id": uuid.uuid4(), "created_at": "2001-01-01", "txid": 1, "origin": 1}[column]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table audit_logs"):
        definer.execute(f"INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, {column})"
                        " VALUES (gen_random_uuid(), 'X', 'x', gen_random_uuid(), '{}', %s)", (value,))
    definer.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with definer.cursor() as cur, cur.copy(f"COPY audit.audit_logs (company_id, action, entity, entity_id, details,"
                                               f" {column}) FROM STDIN") as copy:
            copy.write_row((uuid.uuid4(), "X", "x", uuid.uuid4(), "{}", value))
    definer.rollback()
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_the_recording_functions_role_gets_the_stamp_from_the_defaults(connect_as: ConnectAs) -> None:
    definer = connect_as(FUNCTION_ROLE)
    row = definer.execute(
        "INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)"
        " VALUES (gen_random_uuid(), 'X', 'x', gen_random_uuid(), '{}')"
        " RETURNING id, created_at = now(), txid = txid_current(),"
        " origin = (SELECT system_identifier FROM pg_control_system())").fetchone()
    assert row is not None
    assert row[0].version == 7 and row[1:] == (True, True, True)


def test_ids_are_version_7_in_the_order_entries_were_written(connect_as: ConnectAs) -> None:
    """Time-ordered ids (0014.cheaper-entries): the primary key grows at its right edge, as the log does."""
    writer = connect_as(WRITER)
    before = writer.execute("SELECT clock_timestamp()").fetchone()
    ids = [record(writer, uuid.uuid4(), "CREATE_INVOICE", "invoice", uuid.uuid4()) for _ in range(50)]
    after = writer.execute("SELECT clock_timestamp()").fetchone()
    writer.commit()
    assert before is not None and after is not None
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    milliseconds = [i.int >> 80 for i in ids]
    assert before[0].timestamp() * 1000 - 1 <= milliseconds[0] <= milliseconds[-1] <= after[0].timestamp() * 1000 + 1
    # 62 random bits after the variant: no two alike.
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)


def test_copy_into_the_log_is_stamped_too(connect_as: ConnectAs) -> None:
    owner = connect_as(OWNING_ROLE)
    forged_id = uuid.uuid4()
    with owner.cursor() as cur:
        with cur.copy("COPY audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at)"
                      " FROM STDIN") as copy:
            copy.write_row((forged_id, uuid.uuid4(), "X", "x", uuid.uuid4(), "{}", "2001-01-01T00:00:00Z"))
    owner.commit()
    row = owner.execute("SELECT id, extract(year FROM created_at) FROM audit.audit_logs").fetchone()
    assert row is not None and row[0] != forged_id and row[1] != 2001


@pytest.mark.parametrize("role", [OWNING_ROLE, SUPERUSER])
def test_check_constraints_hold_for_direct_inserts(connect_as: ConnectAs, role: str) -> None:
    conn = connect_as(role)
    for action, entity, details in [(" ", "invoice", "{}"), ("X", "\t", "{}"), ("X", "invoice", "[1]")]:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)"
                         " VALUES (gen_random_uuid(), %s, %s, gen_random_uuid(), %s)", (action, entity, details))
        conn.rollback()
    assert count_entries(conn) == 0
