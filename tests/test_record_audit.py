"""audit.record_audit() and audit.record_audit_many(): the only way in, with clear refusals of bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from audit_py.server import SUPERUSER

from .conftest import OUTSIDER, OWNER, READER, WRITER, ConnectAs
from .helpers import count_entries, record

COMPANY = uuid.uuid4()
ENTITY = uuid.uuid4()


def test_records_an_entry_with_the_given_fields_and_returns_its_id(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    user, franchise = uuid.uuid4(), uuid.uuid4()
    entry_id = record(writer, COMPANY, "CREATE_INVOICE", "invoice", ENTITY, '{"amount": 120.5, "lines": [1, 2]}',
                      user, franchise)
    row = connect_as(READER).execute(
        "SELECT company_id, franchise_id, user_id, action, entity, entity_id, details, now() - created_at"
        " FROM audit.audit_logs WHERE id = %s", (entry_id,)).fetchone()
    assert row is not None
    assert row[:7] == (COMPANY, franchise, user, "CREATE_INVOICE", "invoice", ENTITY,
                       {"amount": 120.5, "lines": [1, 2]})
    assert timedelta(0) <= row[7] < timedelta(minutes=1)


def test_defaults_positional_call_and_named_notation(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    positional = writer.execute("SELECT audit.record_audit(%s, 'LOGIN', 'user', %s)", (COMPANY, ENTITY)).fetchone()
    named = writer.execute(
        "SELECT audit.record_audit(entity_id => %s, entity => 'user', action => 'LOGOUT', company_id => %s,"
        " franchise_id => %s)", (ENTITY, COMPANY, ENTITY)).fetchone()
    writer.commit()
    assert positional and named
    rows = connect_as(READER).execute(
        "SELECT action, details, user_id, franchise_id FROM audit.audit_logs ORDER BY action").fetchall()
    assert rows == [("LOGIN", {}, None, None), ("LOGOUT", {}, None, ENTITY)]


def test_parameter_names_are_the_documented_ones(connect_as: ConnectAs) -> None:
    row = connect_as(SUPERUSER).execute(
        "SELECT proargnames, pg_get_function_arguments(oid), prosecdef, proconfig FROM pg_proc"
        " WHERE oid = 'audit.record_audit'::regproc").fetchone()
    assert row is not None
    names, arguments, security_definer, config = row
    assert names == ["company_id", "action", "entity", "entity_id", "details", "user_id", "franchise_id"]
    assert "details jsonb DEFAULT '{}'::jsonb" in arguments
    assert "user_id uuid DEFAULT NULL::uuid" in arguments and "franchise_id uuid DEFAULT NULL::uuid" in arguments
    assert security_definer and config == ["search_path=pg_catalog, pg_temp"]


BAD_INPUTS = [
    ("company_id", {"company_id": None}, "company_id must not be null"),
    ("entity_id", {"entity_id": None}, "entity_id must not be null"),
    ("action", {"action": None}, "action must not be blank"),
    ("action", {"action": ""}, "action must not be blank"),
    ("action", {"action": " \t\n "}, "action must not be blank"),
    ("entity", {"entity": None}, "entity must not be blank"),
    ("entity", {"entity": "   "}, "entity must not be blank"),
    ("details", {"details": None}, "details must not be null"),
    ("details", {"details": "[1, 2]"}, "details must be a JSON object, not array"),
    ("details", {"details": '"text"'}, "details must be a JSON object, not string"),
    ("details", {"details": "42"}, "details must be a JSON object, not number"),
    ("details", {"details": "null"}, "details must be a JSON object, not null"),
]


@pytest.mark.parametrize(("parameter", "override", "message"), BAD_INPUTS,
                         ids=[f"{p}={o[p]!r}" for p, o, _ in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_parameter_and_nothing_is_written(
        connect_as: ConnectAs, parameter: str, override: dict[str, object], message: str) -> None:
    writer = connect_as(WRITER)
    arguments: dict[str, object] = {"company_id": COMPANY, "action": "CREATE_INVOICE", "entity": "invoice",
                                    "entity_id": ENTITY, "details": "{}", **override}
    with pytest.raises(psycopg.Error) as refused:
        writer.execute("SELECT audit.record_audit(company_id => %(company_id)s, action => %(action)s,"
                       " entity => %(entity)s, entity_id => %(entity_id)s, details => %(details)s::jsonb)",
                       arguments)
    writer.rollback()
    assert refused.value.sqlstate == "AU002"
    assert (refused.value.diag.message_primary or "").startswith(f"record_audit: {message}")
    assert refused.value.diag.column_name == parameter
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_a_failed_call_leaves_the_earlier_work_of_its_transaction_to_the_caller(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    writer.execute("SELECT audit.record_audit(%s, 'A', 'e', %s)", (COMPANY, ENTITY))
    with pytest.raises(psycopg.Error):
        writer.execute("SELECT audit.record_audit(%s, '', 'e', %s)", (COMPANY, ENTITY))
    writer.rollback()
    assert count_entries(connect_as(SUPERUSER)) == 0


@pytest.mark.parametrize("role", [READER, OUTSIDER])
def test_only_writers_may_record(connect_as: ConnectAs, role: str) -> None:
    conn = connect_as(role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT audit.record_audit(%s, 'A', 'e', %s)", (COMPANY, ENTITY))
    conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT audit.record_audit_many(ARRAY[%s::uuid], '{A}', '{e}', ARRAY[%s::uuid], '{\"{}\"}')",
                     (COMPANY, ENTITY))
    assert count_entries(connect_as(SUPERUSER)) == 0


@pytest.mark.parametrize("role", [WRITER, OWNER, SUPERUSER])
def test_writer_owner_and_superuser_may_record(connect_as: ConnectAs, role: str) -> None:
    record(connect_as(role), COMPANY)
    assert count_entries(connect_as(SUPERUSER)) == 1


def test_a_callers_search_path_cannot_redirect_the_function(connect_as: ConnectAs) -> None:
    """A writer who shadows a pg_catalog function in its own schema does not get it called."""
    superuser = connect_as(SUPERUSER)
    superuser.execute("CREATE SCHEMA trap AUTHORIZATION app_writer")
    superuser.commit()
    writer = connect_as(WRITER)
    writer.execute("CREATE FUNCTION trap.now() RETURNS timestamptz LANGUAGE sql"
                   " AS $$SELECT '2001-01-01'::timestamptz$$")
    writer.execute("CREATE FUNCTION trap.gen_random_uuid() RETURNS uuid LANGUAGE sql"
                   " AS $$SELECT '00000000-0000-0000-0000-000000000000'::uuid$$")
    writer.execute("SET search_path = trap, pg_catalog")
    entry_id = record(writer, COMPANY)
    assert entry_id != uuid.UUID(int=0)
    row = connect_as(READER).execute("SELECT extract(year FROM created_at) FROM audit.audit_logs").fetchone()
    assert row is not None and row[0] != 2001


# record_audit_many

MANY_SQL = ("SELECT audit.record_audit_many(%s::uuid[], %s::text[], %s::text[], %s::uuid[], %s::jsonb[],"
            " %s::uuid[], %s::uuid[])")


def test_record_audit_many_writes_the_batch_and_returns_ids_in_order(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    entities = [uuid.uuid4() for _ in range(500)]
    users = [uuid.uuid4() if i % 2 else None for i in range(500)]
    ids = [row[0] for row in writer.execute(
        MANY_SQL, ([COMPANY] * 500, ["A"] * 500, ["e"] * 500, entities,
                   [f'{{"n": {i}}}' for i in range(500)], users, None)).fetchall()]
    writer.commit()
    assert len(set(ids)) == 500
    rows = dict(((r[0], r[1:]) for r in connect_as(READER).execute(
        "SELECT id, entity_id, user_id, details FROM audit.audit_logs").fetchall()))
    assert [rows[i] for i in ids] == [(entities[n], users[n], {"n": n}) for n in range(500)]


def test_record_audit_many_of_nothing_writes_nothing(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    assert writer.execute(MANY_SQL, ([], [], [], [], [], None, None)).fetchall() == []


@pytest.mark.parametrize(("parameter", "override", "message"), BAD_INPUTS,
                         ids=[f"{p}={o[p]!r}" for p, o, _ in BAD_INPUTS])
def test_record_audit_many_refuses_the_whole_batch_naming_entry_and_parameter(
        connect_as: ConnectAs, parameter: str, override: dict[str, object], message: str) -> None:
    writer = connect_as(WRITER)
    columns: dict[str, list[object]] = {"company_id": [COMPANY] * 4, "action": ["A"] * 4, "entity": ["e"] * 4,
                                        "entity_id": [ENTITY] * 4, "details": ["{}"] * 4}
    columns[parameter][2] = override[parameter]
    with pytest.raises(psycopg.Error) as refused:
        writer.execute(MANY_SQL, (*columns.values(), None, None))
    writer.rollback()
    assert refused.value.sqlstate == "AU002"
    expected = f"record_audit_many: entry 3 (counting from 1): {message}"
    assert (refused.value.diag.message_primary or "").startswith(expected)
    assert refused.value.diag.column_name == parameter
    assert count_entries(connect_as(SUPERUSER)) == 0


@pytest.mark.parametrize("short", ["actions", "entities", "entity_ids", "details", "user_ids", "franchise_ids"])
def test_record_audit_many_refuses_arrays_of_different_lengths(connect_as: ConnectAs, short: str) -> None:
    writer = connect_as(WRITER)
    columns: dict[str, list[object] | None] = {
        "company_ids": [COMPANY] * 3, "actions": ["A"] * 3, "entities": ["e"] * 3, "entity_ids": [ENTITY] * 3,
        "details": ["{}"] * 3, "user_ids": [None] * 3, "franchise_ids": [None] * 3}
    columns[short] = (columns[short] or [])[:2]
    with pytest.raises(psycopg.Error) as refused:
        writer.execute(MANY_SQL, tuple(columns.values()))
    writer.rollback()
    assert refused.value.sqlstate == "AU002"
    assert "one element per entry" in str(refused.value)
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_record_audit_many_refuses_null_company_ids(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    with pytest.raises(psycopg.Error) as refused:
        writer.execute(MANY_SQL, (None, ["A"], ["e"], [ENTITY], ["{}"], None, None))
    assert refused.value.sqlstate == "AU002" and refused.value.diag.column_name == "company_ids"
