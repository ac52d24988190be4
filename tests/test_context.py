"""Who did it: the transaction's context, from SQL and from Python, and strict mode."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from audit_py import AsyncAuditService, AuditEntry, AuditService, InvalidContext, InvalidEntry
from audit_py.errors import translate_errors
from audit_py.server import SUPERUSER

from .conftest import OUTSIDER, OWNER, READER, WRITER, ConnectAs
from .helpers import count_entries

COMPANY, FRANCHISE, USER, OTHER_USER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
AsyncConnectAs = Callable[..., Any]
LAST_ENTRY = ("SELECT company_id, franchise_id, user_id, context FROM audit.audit_logs"
              " ORDER BY created_at DESC, txid DESC LIMIT 1")
RECORD_FROM_CONTEXT = "SELECT audit.record_audit(NULL, 'APPROVE_INVOICE', 'invoice', gen_random_uuid())"


def test_set_local_fills_what_record_audit_is_not_given(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    writer.execute(f"SET LOCAL audit.company_id = '{COMPANY}'; SET LOCAL audit.user_id = '{USER}';"
                   f" SET LOCAL audit.franchise_id = '{FRANCHISE}';"
                   """ SET LOCAL audit.context = '{"request_id": "req-7", "client_addr": "198.51.100.4"}'""")
    writer.execute(RECORD_FROM_CONTEXT)
    writer.execute("SELECT audit.record_audit(%s, 'X', 'x', gen_random_uuid(), user_id => %s)", (COMPANY, OTHER_USER))
    writer.commit()
    rows = connect_as(SUPERUSER).execute("SELECT company_id, franchise_id, user_id, context FROM audit.audit_logs"
                                         " ORDER BY action").fetchall()
    context = {"request_id": "req-7", "client_addr": "198.51.100.4"}
    assert rows == [(COMPANY, FRANCHISE, USER, context), (COMPANY, FRANCHISE, OTHER_USER, context)]


def test_set_context_is_the_helper_for_sql_users(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    writer.execute("SELECT audit.set_context(user_id => %s, company_id => %s, extra => '{\"job\": \"nightly\"}')",
                   (USER, COMPANY))
    writer.execute("SELECT audit.set_context(franchise_id => %s)", (FRANCHISE,))  # keeps the rest
    writer.execute(RECORD_FROM_CONTEXT)
    writer.commit()
    assert connect_as(SUPERUSER).execute(LAST_ENTRY).fetchone() == (COMPANY, FRANCHISE, USER, {"job": "nightly"})


def test_nothing_leaks_into_the_next_transaction_on_the_same_connection(connect_as: ConnectAs) -> None:
    """A pooled connection, or PgBouncer in transaction mode, hands the next request the same session."""
    conn = connect_as(WRITER)
    with AuditService(conn).context(user_id=USER, company_id=COMPANY, request_id="req-1"):
        conn.execute(RECORD_FROM_CONTEXT)
    conn.execute("SELECT audit.set_context(user_id => %s, company_id => %s)", (USER, COMPANY))
    conn.commit()
    for _ in range(2):  # after a commit, and after a rollback
        settings = conn.execute("SELECT current_setting('audit.user_id'), current_setting('audit.company_id'),"
                                " current_setting('audit.context')").fetchone()
        assert settings == ("", "", "")
        with pytest.raises(InvalidEntry, match="company_id must not be null") as refused, translate_errors():
            conn.execute(RECORD_FROM_CONTEXT)
        assert refused.value.parameter == "company_id"
        conn.rollback()
    conn.execute("SELECT audit.record_audit(%s, 'X', 'x', gen_random_uuid())", (COMPANY,))
    conn.commit()
    assert connect_as(SUPERUSER).execute(LAST_ENTRY).fetchone() == (COMPANY, None, None, {})


def test_the_python_context_is_a_transaction_whose_entries_carry_it(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    audit = AuditService(conn)
    with audit.context(user_id=USER, company_id=COMPANY, request_id="req-9", amount=Decimal("1.50"),
                       day=date(2026, 11, 26), order=uuid.UUID(int=1)):
        entry_id = audit.record(None, "APPROVE_INVOICE", "invoice", uuid.uuid4())
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE, "committed at the end of the block"
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert stored is not None
    assert (stored.company_id, stored.user_id) == (COMPANY, USER)
    assert stored.context == {"request_id": "req-9", "amount": "1.50", "day": "2026-11-26",
                              "order": "00000000-0000-0000-0000-000000000001"}


def test_a_nested_context_adds_to_the_outer_one_and_ends_with_its_block(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    audit = AuditService(conn)
    with audit.context(user_id=USER, company_id=COMPANY, request_id="req-1"):
        with audit.context(user_id=OTHER_USER, step="approve"):
            audit.record(None, "INNER", "invoice", uuid.uuid4())
        audit.record(None, "OUTER", "invoice", uuid.uuid4())
    rows = connect_as(SUPERUSER).execute("SELECT action, user_id, context FROM audit.audit_logs ORDER BY action"
                                         ).fetchall()
    assert rows == [("INNER", OTHER_USER, {"request_id": "req-1", "step": "approve"}),
                    ("OUTER", USER, {"request_id": "req-1"})]


def test_a_context_inside_the_callers_transaction_leaves_it_open_and_clean(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    conn.execute("SELECT 1")  # the caller's transaction is open
    with AuditService(conn).context(company_id=COMPANY):
        conn.execute(RECORD_FROM_CONTEXT)
    assert conn.execute("SELECT current_setting('audit.company_id')").fetchone() == ("",)
    conn.rollback()  # the caller decides: the entry goes with its transaction
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_a_failing_block_rolls_back_its_entries(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER, autocommit=True)
    audit = AuditService(conn)
    with pytest.raises(RuntimeError), audit.context(company_id=COMPANY):
        audit.record(None, "A", "invoice", uuid.uuid4())
        raise RuntimeError("the business change failed")
    assert count_entries(connect_as(SUPERUSER)) == 0
    assert conn.execute("SELECT current_setting('audit.company_id', true)").fetchone() in {("",), (None,)}


def test_extra_values_json_cannot_hold_are_refused_before_anything_is_sent(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    with pytest.raises(InvalidContext) as refused, AuditService(conn).context(company_id=COMPANY, blob=object()):
        pass
    assert refused.value.parameter == "context"


MALFORMED = {
    "user_id": ("SET LOCAL audit.user_id = 'alice'", "audit.user_id", "is not a uuid"),
    "company_id": ("SET LOCAL audit.company_id = '42'", "audit.company_id", "is not a uuid"),
    "franchise_id": ("SET LOCAL audit.franchise_id = 'x'", "audit.franchise_id", "is not a uuid"),
    "context not JSON": ("SET LOCAL audit.context = 'req-1'", "audit.context", "is not a JSON object"),
    "context an array": ("SET LOCAL audit.context = '[1]'", "audit.context", "is not a JSON object"),
    "extra an array": ("SELECT audit.set_context(extra => '[1]')", "extra", "must be a JSON object"),
}


@pytest.mark.parametrize(("setting", "parameter", "words"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_context_is_refused_naming_the_setting(connect_as: ConnectAs, setting: str, parameter: str,
                                                            words: str) -> None:
    writer = connect_as(WRITER)
    writer.execute(f"SET LOCAL audit.company_id = '{COMPANY}'")
    with pytest.raises(InvalidContext) as refused, translate_errors():
        writer.execute(setting)  # type: ignore[call-overload]
        writer.execute(RECORD_FROM_CONTEXT)
    assert refused.value.sqlstate == "AU006" and refused.value.parameter == parameter and words in str(refused.value)
    writer.rollback()
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_record_audit_many_takes_the_context_too(connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    audit = AuditService(conn)
    with audit.context(user_id=USER, company_id=COMPANY, batch="import-3"):
        audit.record_many([AuditEntry(None, "IMPORT", "invoice", uuid.uuid4()),
                           AuditEntry(None, "IMPORT", "invoice", uuid.uuid4(), user_id=OTHER_USER)])
    rows = connect_as(SUPERUSER).execute("SELECT company_id, user_id, context FROM audit.audit_logs ORDER BY user_id"
                                         " = %s", (USER,)).fetchall()
    assert rows == [(COMPANY, OTHER_USER, {"batch": "import-3"}), (COMPANY, USER, {"batch": "import-3"})]


async def test_the_async_context_behaves_the_same(aconnect_as: AsyncConnectAs, connect_as: ConnectAs) -> None:
    conn = await aconnect_as(WRITER)
    audit = AsyncAuditService(conn)
    async with audit.context(user_id=USER, company_id=COMPANY, request_id="req-a"):
        async with audit.context(step="inner"):
            await audit.record(None, "INNER", "invoice", uuid.uuid4())
        await audit.record(None, "OUTER", "invoice", uuid.uuid4())
    cur = await conn.execute("SELECT current_setting('audit.user_id'), current_setting('audit.context')")
    assert await cur.fetchone() == ("", "")
    await conn.rollback()
    rows = connect_as(SUPERUSER).execute("SELECT action, user_id, context FROM audit.audit_logs ORDER BY action"
                                         ).fetchall()
    assert rows == [("INNER", USER, {"request_id": "req-a", "step": "inner"}),
                    ("OUTER", USER, {"request_id": "req-a"})]
    with pytest.raises(InvalidContext):
        async with audit.context(company_id=COMPANY, blob=object()):
            pass


@pytest.fixture
def strict(connect_as: ConnectAs) -> psycopg.Connection[Any]:
    owner = connect_as(OWNER, autocommit=True)
    owner.execute("SELECT audit.enable_strict_mode()")
    owner.execute("SELECT audit.enable_strict_mode()")  # harmless twice
    return owner


def test_strict_mode_refuses_an_entry_without_a_user(strict: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    conn = connect_as(WRITER)
    audit = AuditService(conn)
    with pytest.raises(InvalidContext, match="strict mode is on and no user_id is known") as refused:
        audit.record(COMPANY, "X", "invoice", uuid.uuid4())
    assert refused.value.parameter == "user_id"
    conn.rollback()
    with pytest.raises(InvalidContext):
        audit.record_many([AuditEntry(COMPANY, "X", "invoice", uuid.uuid4(), user_id=USER),
                           AuditEntry(COMPANY, "X", "invoice", uuid.uuid4())])
    conn.rollback()
    assert count_entries(connect_as(SUPERUSER)) == 0
    audit.record(COMPANY, "X", "invoice", uuid.uuid4(), user_id=USER)
    with audit.context(user_id=USER):
        audit.record(COMPANY, "Y", "invoice", uuid.uuid4())
    conn.commit()
    assert count_entries(connect_as(SUPERUSER)) == 2


def test_strict_mode_refuses_a_tracked_change_without_a_user(strict: psycopg.Connection[Any],
                                                             connect_as: ConnectAs) -> None:
    connect_as(SUPERUSER, autocommit=True).execute(f"CREATE SCHEMA erp AUTHORIZATION {OWNER}")
    strict.execute("CREATE TABLE erp.notes (id uuid PRIMARY KEY, company_id uuid NOT NULL, body text);"
                   " GRANT USAGE ON SCHEMA erp TO app_outsider; GRANT INSERT ON erp.notes TO app_outsider;"
                   " SELECT audit.enable_tracking('erp.notes')")
    app = connect_as(OUTSIDER)
    with pytest.raises(psycopg.Error, match="INSERT on erp.notes: strict mode is on") as refused:
        app.execute("INSERT INTO erp.notes VALUES (gen_random_uuid(), %s, 'x')", (COMPANY,))
    assert refused.value.sqlstate == "AU006"
    app.rollback()
    with AuditService(app).context(user_id=USER):
        app.execute("INSERT INTO erp.notes VALUES (gen_random_uuid(), %s, 'x')", (COMPANY,))
    assert connect_as(SUPERUSER).execute("SELECT user_id FROM audit.audit_logs").fetchall() == [(USER,)]


def test_strict_mode_for_one_role_leaves_the_others_alone(connect_as: ConnectAs) -> None:
    owner = connect_as(OWNER, autocommit=True)
    owner.execute(f"SELECT audit.enable_strict_mode('{WRITER}')")
    assert connect_as(READER).execute("SELECT login_role::text FROM audit.strict_mode").fetchall() == [(WRITER,)]
    with pytest.raises(InvalidContext), translate_errors():
        connect_as(WRITER).execute("SELECT audit.record_audit(%s, 'X', 'x', gen_random_uuid())", (COMPANY,))
    connect_as(OWNER).execute("SELECT audit.record_audit(%s, 'X', 'x', gen_random_uuid())", (COMPANY,))
    owner.execute(f"SELECT audit.disable_strict_mode('{WRITER}')")
    connect_as(WRITER).execute("SELECT audit.record_audit(%s, 'X', 'x', gen_random_uuid())", (COMPANY,))


@pytest.mark.parametrize("statement", ["SELECT audit.disable_strict_mode()", "DELETE FROM audit.strict_mode",
                                       "SELECT audit.enable_strict_mode('app_reader')",
                                       "UPDATE audit.strict_mode SET login_role = 'app_reader'"])
@pytest.mark.parametrize("role", [WRITER, READER])
def test_applications_cannot_turn_strict_mode_off_or_on(strict: psycopg.Connection[Any], connect_as: ConnectAs,
                                                        role: str, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        connect_as(role).execute(statement)  # type: ignore[call-overload]
    assert connect_as(SUPERUSER).execute("SELECT count(*) FROM audit.strict_mode").fetchone() == (1,)


def test_context_needs_no_privilege_on_the_log(connect_as: ConnectAs) -> None:
    """Any application role may say who acts: it is its own session's settings."""
    conn = connect_as(OUTSIDER)
    with AuditService(conn).context(user_id=USER, company_id=COMPANY):
        assert conn.execute("SELECT current_setting('audit.user_id')").fetchone() == (str(USER),)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        AuditService(conn).record(COMPANY, "X", "x", uuid.uuid4())
