"""AuditService: records in the caller's transaction, maps refusals to our exceptions."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg
import pytest

from audit_py import AuditEntry, AuditError, AuditRecord, AuditService, ImmutableViolation, InvalidEntry
from audit_py.errors import translate_errors
from audit_py.server import SUPERUSER

from .conftest import OWNING_ROLE, READER, WRITER, ConnectAs
from .helpers import count_entries

COMPANY = uuid.uuid4()


@pytest.fixture
def invoices(connect_as: ConnectAs) -> None:
    superuser = connect_as(SUPERUSER, autocommit=True)
    superuser.execute("CREATE TABLE invoices (id uuid PRIMARY KEY, amount numeric NOT NULL)")
    superuser.execute(f"GRANT SELECT, INSERT ON invoices TO {WRITER}")


def _invoice_count(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM invoices").fetchone()
    assert row is not None
    return int(row[0])


def test_record_returns_the_id_of_the_stored_entry(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    user, franchise, invoice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    entry_id = AuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", invoice, {"amount": 10},
                                           user_id=user, franchise_id=franchise)
    writer.commit()
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert isinstance(stored, AuditRecord)
    assert (stored.id, stored.company_id, stored.franchise_id, stored.user_id, stored.action, stored.entity,
            stored.entity_id, stored.details) == (entry_id, COMPANY, franchise, user, "CREATE_INVOICE", "invoice",
                                                  invoice, {"amount": 10})
    assert stored.created_at.tzinfo is not None


def test_get_of_an_unknown_id_is_none(connect_as: ConnectAs) -> None:
    assert AuditService(connect_as(READER)).get(uuid.uuid4()) is None


def test_entry_commits_with_the_business_change(connect_as: ConnectAs, invoices: None) -> None:
    writer = connect_as(WRITER)
    invoice = uuid.uuid4()
    with writer.transaction():
        writer.execute("INSERT INTO invoices VALUES (%s, 10)", (invoice,))
        AuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", invoice)
    observer = connect_as(SUPERUSER)
    assert (_invoice_count(observer), count_entries(observer)) == (1, 1)


def test_entry_rolls_back_with_the_business_change(connect_as: ConnectAs, invoices: None) -> None:
    writer = connect_as(WRITER)
    invoice = uuid.uuid4()
    writer.execute("INSERT INTO invoices VALUES (%s, 10)", (invoice,))
    AuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", invoice)
    AuditService(writer).record_many([AuditEntry(COMPANY, "APPROVE_INVOICE", "invoice", invoice)])
    writer.rollback()
    observer = connect_as(SUPERUSER)
    assert (_invoice_count(observer), count_entries(observer)) == (0, 0)


def test_a_refused_entry_takes_the_business_change_down_with_it(connect_as: ConnectAs, invoices: None) -> None:
    writer = connect_as(WRITER)
    with pytest.raises(InvalidEntry), writer.transaction():
        writer.execute("INSERT INTO invoices VALUES (%s, 10)", (uuid.uuid4(),))
        AuditService(writer).record(COMPANY, "", "invoice", uuid.uuid4())
    observer = connect_as(SUPERUSER)
    assert (_invoice_count(observer), count_entries(observer)) == (0, 0)


def test_an_uncommitted_entry_is_invisible_to_others(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    AuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", uuid.uuid4())
    assert count_entries(connect_as(SUPERUSER)) == 0
    writer.commit()
    assert count_entries(connect_as(SUPERUSER)) == 1


def test_autocommit_connection_commits_each_entry(connect_as: ConnectAs) -> None:
    AuditService(connect_as(WRITER, autocommit=True)).record(COMPANY, "LOGIN", "user", uuid.uuid4())
    assert count_entries(connect_as(SUPERUSER)) == 1


@pytest.mark.parametrize(("call", "parameter"), [
    (lambda s: s.record(None, "A", "e", uuid.uuid4()), "company_id"),
    (lambda s: s.record(COMPANY, " ", "e", uuid.uuid4()), "action"),
    (lambda s: s.record(COMPANY, "A", "", uuid.uuid4()), "entity"),
    (lambda s: s.record(COMPANY, "A", "e", None), "entity_id"),
    (lambda s: s.record(COMPANY, "A", "e", uuid.uuid4(), [1, 2]), "details"),
    (lambda s: s.record(COMPANY, "A", "e", uuid.uuid4(), "text"), "details"),
    (lambda s: s.record_entry(AuditEntry(COMPANY, "A", "e", uuid.uuid4(), [])), "details"),  # type: ignore[arg-type]
])
def test_invalid_entries_raise_invalid_entry_naming_the_parameter(connect_as: ConnectAs, call: object,
                                                                  parameter: str) -> None:
    writer = connect_as(WRITER)
    with pytest.raises(InvalidEntry) as refused:
        call(AuditService(writer))  # type: ignore[operator]
    writer.rollback()
    assert refused.value.sqlstate == "AU002"
    assert refused.value.parameter == parameter
    assert parameter in str(refused.value)
    assert isinstance(refused.value.__cause__, psycopg.Error)
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_none_details_means_no_details(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    entry_id = AuditService(writer).record(COMPANY, "A", "e", uuid.uuid4(), None)
    writer.commit()
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert stored is not None and stored.details == {}


def test_details_may_hold_the_values_an_erp_has(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    customer = uuid.uuid4()
    details = {"amount": Decimal("1234.56"), "due": date(2026, 12, 31), "customer": customer,
               "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "lines": [{"qty": 2}], "note": "é ✓"}
    entry_id = AuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", uuid.uuid4(), details)
    writer.commit()
    stored = AuditService(connect_as(READER)).get(entry_id)
    assert stored is not None
    assert stored.details == {"amount": "1234.56", "due": "2026-12-31", "customer": str(customer),
                              "at": "2026-01-02T03:04:05+00:00", "lines": [{"qty": 2}], "note": "é ✓"}


@pytest.mark.parametrize(("details", "reason"), [({"blob": object()}, "object is not JSON serializable"),
                                                 ({"ratio": float("nan")}, "Out of range float values")])
def test_details_that_json_cannot_hold_are_refused_before_the_database(
        connect_as: ConnectAs, details: dict[str, object], reason: str) -> None:
    writer = connect_as(WRITER)
    for call in (lambda: AuditService(writer).record(COMPANY, "A", "e", uuid.uuid4(), details),
                 lambda: AuditService(writer).record_many([AuditEntry(COMPANY, "A", "e", uuid.uuid4(), details)])):
        with pytest.raises(InvalidEntry) as refused:
            call()
        assert refused.value.parameter == "details" and reason in str(refused.value)
    assert count_entries(connect_as(SUPERUSER)) == 0


def test_record_many_writes_all_in_order(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    entries = [AuditEntry(COMPANY, "APPROVE_INVOICE", "invoice", uuid.uuid4(), {"step": n},
                          user_id=uuid.uuid4() if n % 2 else None, franchise_id=uuid.uuid4() if n % 3 else None)
               for n in range(50)]
    ids = AuditService(writer).record_many(entries)
    writer.commit()
    reader = AuditService(connect_as(READER))
    stored = [reader.get(entry_id) for entry_id in ids]
    assert [(s.entity_id, s.details, s.user_id, s.franchise_id) for s in stored if s] == \
        [(e.entity_id, e.details, e.user_id, e.franchise_id) for e in entries]


def test_record_many_accepts_any_iterable_and_an_empty_one(connect_as: ConnectAs) -> None:
    service = AuditService(connect_as(WRITER))
    assert service.record_many([]) == []
    assert len(service.record_many(AuditEntry(COMPANY, "A", "e", uuid.uuid4()) for _ in range(3))) == 3


def test_record_many_is_all_or_nothing(connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    entries = [AuditEntry(COMPANY, "A", "e", uuid.uuid4()) for _ in range(5)]
    entries[3] = dataclasses.replace(entries[3], entity=" ")
    with pytest.raises(InvalidEntry) as refused:
        AuditService(writer).record_many(entries)
    writer.rollback()
    assert refused.value.parameter == "entity" and "entry 4" in str(refused.value)
    assert count_entries(connect_as(SUPERUSER)) == 0


@pytest.mark.parametrize("statement", ["UPDATE audit.audit_logs SET action = 'X'", "DELETE FROM audit.audit_logs",
                                       "TRUNCATE audit.audit_logs"])
def test_tampering_maps_to_immutable_violation(connect_as: ConnectAs, statement: str) -> None:
    writer = connect_as(WRITER)
    AuditService(writer).record(COMPANY, "A", "e", uuid.uuid4())
    writer.commit()
    owner = connect_as(OWNING_ROLE)
    with pytest.raises(ImmutableViolation) as refused, translate_errors():
        owner.execute(statement)
    assert refused.value.sqlstate == "AU001" and isinstance(refused.value, AuditError)
    assert statement.split()[0] in str(refused.value)


def test_other_database_errors_pass_through_untouched(connect_as: ConnectAs) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), translate_errors():
        connect_as(WRITER).execute("SELECT * FROM audit.audit_logs")


def test_entries_and_rows_are_frozen() -> None:
    entry = AuditEntry(COMPANY, "A", "e", uuid.uuid4())
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.action = "B"  # type: ignore[misc]
    assert dataclasses.fields(AuditRecord)[0].name == "id"
    assert AuditRecord.__dataclass_params__.frozen  # type: ignore[attr-defined]


@pytest.mark.parametrize(("column", "value"), [("action", "' '"), ("entity", "''"), ("details", "'[1]'")])
def test_a_direct_insert_breaking_a_check_maps_to_invalid_entry(connect_as: ConnectAs, column: str,
                                                                value: str) -> None:
    values = {"action": "'A'", "entity": "'e'", "details": "'{}'", column: value}
    with pytest.raises(InvalidEntry) as refused, translate_errors():
        connect_as(OWNING_ROLE).execute(
            "INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details) VALUES"  # noqa: S608
            f" (gen_random_uuid(), {values['action']}, {values['entity']}, gen_random_uuid(), {values['details']})")
    assert (refused.value.sqlstate, refused.value.parameter) == ("23514", column)


def test_a_check_violation_elsewhere_is_not_an_audit_error(connect_as: ConnectAs) -> None:
    conn = connect_as(SUPERUSER)
    conn.execute("CREATE TEMP TABLE positive (n int CHECK (n > 0))")
    with pytest.raises(psycopg.errors.CheckViolation), translate_errors():
        conn.execute("INSERT INTO positive VALUES (-1)")
