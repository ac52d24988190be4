"""What goes into details comes back as it was, or is refused naming the parameter: never changed on the way."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from audit_py import AsyncAuditService, AuditEntry, AuditService, InvalidContext, InvalidEntry, InvalidQuery
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import READER, WRITER, ConnectAs
from .helpers import count_entries
from .test_cli import audit_py

COMPANY, ORDER = uuid.uuid4(), uuid.uuid4()
NUMBERS = '{"big": 12345678901234567.89, "tiny": 1e-30, "huge": 1e300, "int": 123456789012345678901234567890,' \
          ' "nested": [0.1, {"x": 2.50}]}'


def test_numbers_come_back_exact(connect_as: ConnectAs, pg_server: ThrowawayServer, postgresql: Any) -> None:
    writer = connect_as(WRITER, autocommit=True)
    writer.execute(f"SELECT audit.record_audit(%s, 'PAY', 'order', %s, '{NUMBERS}')", (COMPANY, ORDER))
    reader = AuditService(connect_as(READER))
    for record in (reader.search(COMPANY).entries[0], reader.history("order", ORDER)[0]):
        assert record.details == {"big": Decimal("12345678901234567.89"), "tiny": Decimal("1E-30"),
                                  "huge": Decimal("1E+300"), "int": 123456789012345678901234567890,
                                  "nested": [Decimal("0.1"), {"x": Decimal("2.50")}]}
        assert str(record.details["big"]) == "12345678901234567.89"
    printed = audit_py("log", "--company", str(COMPANY), "--json", "--dsn",
                       pg_server.conninfo_for(postgresql.info.dbname, user=READER))
    assert printed.returncode == 0, printed.stderr
    assert '"big": 12345678901234567.89' in printed.stdout  # a number, every digit, not a string
    assert json.loads(printed.stdout, parse_float=Decimal)["details"]["big"] == Decimal("12345678901234567.89")


async def test_numbers_come_back_exact_async(connect_as: ConnectAs, aconnect_as: Any) -> None:
    connect_as(WRITER, autocommit=True).execute(
        "SELECT audit.record_audit(%s, 'PAY', 'order', %s, '{\"big\": 12345678901234567.89}')", (COMPANY, ORDER))
    page = await AsyncAuditService(await aconnect_as(READER)).search(COMPANY)
    assert page.entries[0].details == {"big": Decimal("12345678901234567.89")}


def test_ids_as_text_are_taken_as_the_uuids_they_are(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    entry_id = AuditService(writer).record(str(COMPANY), "PAY", "order", str(ORDER).upper(),  # type: ignore[arg-type]
                                           user_id=str(uuid.uuid4()))  # type: ignore[arg-type]
    writer.commit()
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert stored is not None and (stored.company_id, stored.entity_id) == (COMPANY, ORDER)


@pytest.mark.parametrize(("arguments", "parameter", "words"), [
    ({"company_id": "not-a-uuid"}, "company_id", "is not a UUID"),
    ({"entity_id": 12345}, "entity_id", "is not a UUID"),
    ({"details": {1: "one", "1": "uno"}}, "details", "key 1 is not text"),
    ({"details": {"lines": [{(1, 2): "x"}]}}, "details", "JSON keys are text"),
    ({"details": {"note": "a\x00b"}}, "details", "NUL"),
    ({"details": {"a\x00": 1}}, "details", "NUL"),
    ({"action": "PAY\x00"}, "action", "NUL"),
    ({"entity": "order\x00"}, "entity", "NUL"),
], ids=["company text", "entity int", "colliding keys", "nested tuple key", "NUL in a value", "NUL in a key",
        "NUL in action", "NUL in entity"])
def test_what_would_be_changed_or_lost_is_refused_naming_it(connect_as: ConnectAs, arguments: dict[str, Any],
                                                            parameter: str, words: str) -> None:
    entry = {"company_id": COMPANY, "action": "PAY", "entity": "order", "entity_id": ORDER, "details": {},
             **arguments}
    writer = connect_as(WRITER)
    audit = AuditService(writer)
    with pytest.raises(InvalidEntry) as refused:
        audit.record(entry.pop("company_id"), entry.pop("action"), entry.pop("entity"), entry.pop("entity_id"),
                     entry.pop("details"))
    assert refused.value.parameter == parameter and words in str(refused.value), refused.value
    # In a batch, the good entries before it are not written either.
    with pytest.raises(InvalidEntry):
        audit.record_many([AuditEntry(COMPANY, "PAY", "order", ORDER, {}),
                           AuditEntry(**{"company_id": COMPANY, "action": "PAY", "entity": "order",
                                         "entity_id": ORDER, "details": {}, **arguments})])
    writer.commit()
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_any_mapping_is_taken(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    details = MappingProxyType({"lines": (MappingProxyType({"sku": "A-1", "qty": 2}),), "note": "ok"})
    entry_id = AuditService(writer).record(COMPANY, "PAY", "order", ORDER, details)
    writer.commit()
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert stored is not None and stored.details == {"lines": [{"sku": "A-1", "qty": 2}], "note": "ok"}


@pytest.mark.parametrize("stored", ['{"amount": 1e5000}', '{"v": ' + "[" * 1200 + "]" * 1200 + "}",
                                    '{"v": ' + "[" * 450 + "]" * 450 + "}"],
                         ids=["a 5001-digit integer", "nested deeper than Python recurses", "nested 450 deep"])
def test_no_stored_entry_stops_the_python_readers_of_its_company(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                                                 postgresql: Any, stored: str) -> None:
    """The log is immutable: an entry no reader could read would stop them for good."""
    company, invoice = uuid.uuid4(), uuid.uuid4()
    writer = connect_as(WRITER, autocommit=True)
    writer.execute("SELECT audit.record_audit(%s, 'A', 'invoice', %s, %s::jsonb, gen_random_uuid())",
                   (company, invoice, stored))
    writer.execute("SELECT audit.record_audit(%s, 'B', 'invoice', %s, '{}', gen_random_uuid())",
                   (company, uuid.uuid4()))
    reader = AuditService(connect_as(READER, autocommit=True))
    assert len(reader.search(company).entries) == 2
    [entry] = reader.history("invoice", invoice)
    printed = audit_py("log", "--company", str(company), "--json", "--dsn",
                       pg_server.conninfo_for(postgresql.info.dbname, user=READER))
    assert printed.returncode == 0, printed.stderr[-300:]
    line = printed.stdout.splitlines()[-1]  # oldest last: the stored one
    if "1e5000" in stored:
        assert entry.details == {"amount": Decimal("1E+5000")}
        assert json.loads(line, parse_int=Decimal)["details"] == {"amount": Decimal("1E+5000")}
    else:  # as the database printed it, every bracket
        assert line.count("[") == stored.count("[") and line.count("]") == stored.count("]")


@pytest.mark.parametrize("details", [{"note": "\ud800"}, {"\udfff": 1}], ids=["in a value", "in a key"])
def test_a_lone_surrogate_is_refused_before_the_database_and_the_transaction_goes_on(
        connect_as: ConnectAs, details: dict[str, Any]) -> None:
    conn = connect_as(WRITER)
    conn.execute("CREATE TEMP TABLE invoices (id int)")
    with pytest.raises(InvalidEntry) as refused:
        AuditService(conn).record(COMPANY, "A", "invoice", ORDER, details)
    assert refused.value.parameter == "details" and "UTF-8" in str(refused.value)
    conn.execute("INSERT INTO invoices VALUES (1)")  # the caller's transaction is not aborted


def test_details_that_hold_themselves_or_nest_too_deep_are_invalid(connect_as: ConnectAs) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"v": deep}
    for details in (circular, deep):
        with pytest.raises(InvalidEntry) as refused:
            AuditService(connect_as(WRITER)).record(COMPANY, "A", "invoice", ORDER, details)
        assert refused.value.parameter == "details"


def test_context_extras_the_database_cannot_store_are_an_invalid_context(connect_as: ConnectAs) -> None:
    audit = AuditService(connect_as(WRITER))
    for extra in ({"note": "a\x00b"}, {"note": "\ud800"}):
        with pytest.raises(InvalidContext) as refused, audit.context(user_id=uuid.uuid4(), **extra):
            pass
        assert refused.value.parameter == "context"


@pytest.mark.parametrize(("call", "parameter"), [
    (lambda s: s.search(uuid.uuid4(), action="a\x00"), "action"),
    (lambda s: s.search(uuid.uuid4(), entity="\ud800"), "entity"),
    (lambda s: s.search(uuid.uuid4(), after="\x00"), "after"),
    (lambda s: s.search("not-a-uuid"), "company_id"),
    (lambda s: s.history("\udc80", uuid.uuid4()), "entity"),
    (lambda s: s.history("a\x00", uuid.uuid4()), "entity"),
    (lambda s: s.get("not-a-uuid"), "entry_id"),
], ids=["search action NUL", "search entity surrogate", "search after NUL", "search company text",
        "history surrogate", "history NUL", "get not a uuid"])
def test_reading_refuses_what_postgresql_cannot_take_as_an_invalid_query(
        connect_as: ConnectAs, call: Any, parameter: str) -> None:
    reader = connect_as(READER)
    with pytest.raises(InvalidQuery) as refused:
        call(AuditService(reader))
    assert refused.value.parameter == parameter
    reader.execute("SELECT 1")  # nothing reached the database: the transaction goes on
