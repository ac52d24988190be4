"""Change tracking: every INSERT, UPDATE and DELETE of a tracked table writes entries, with no application code."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from audit_py import InvalidTracking, UntrackableChange, ledger
from audit_py.errors import translate_errors
from audit_py.server import SUPERUSER

from . import test_tamper_evidence as tamper
from .conftest import OUTSIDER, OWNER, READER, WRITER, ConnectAs
from .helpers import count_entries

COMPANY, OTHER_COMPANY, FRANCHISE, USER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

# The application's schema, owned by its own migration role (here OWNER, who owns the
# database); WRITER and OUTSIDER are applications that change rows.
INVOICES = """
CREATE TABLE erp.invoices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id   uuid NOT NULL,
    franchise_id uuid,
    number       integer NOT NULL,
    amount       numeric(12, 2) NOT NULL,
    status       text NOT NULL DEFAULT 'open',
    card_number  text
);
CREATE TABLE erp.notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text NOT NULL);
GRANT USAGE ON SCHEMA erp TO app_writer, app_outsider;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA erp TO app_writer, app_outsider;
SELECT audit.enable_tracking('erp.invoices', exclude_columns => '{card_number}');
SELECT audit.enable_tracking('erp.notes');
"""


@pytest.fixture
def erp(connect_as: ConnectAs) -> psycopg.Connection[Any]:
    """The owner's connection, after creating and tracking erp.invoices and erp.notes."""
    connect_as(SUPERUSER, autocommit=True).execute(f"CREATE SCHEMA erp AUTHORIZATION {OWNER}")
    owner = connect_as(OWNER, autocommit=True)
    owner.execute(INVOICES)  # type: ignore[call-overload]
    return owner


def entries(conn: psycopg.Connection[Any], action: str | None = None) -> list[tuple[Any, ...]]:
    """(action, entity, entity_id, company_id, franchise_id, user_id, details, context) in writing order."""
    return conn.execute(
        "SELECT action, entity, entity_id, company_id, franchise_id, user_id, details, context"
        " FROM audit.audit_logs WHERE %(action)s::text IS NULL OR action = %(action)s ORDER BY created_at, txid,"
        " details::text", {"action": action}).fetchall()


def add_invoice(conn: psycopg.Connection[Any], number: int = 1, amount: str = "10.00",
                company: uuid.UUID = COMPANY) -> uuid.UUID:
    row = conn.execute("INSERT INTO erp.invoices (company_id, number, amount, card_number) VALUES (%s, %s, %s,"
                       " '4111 1111 1111 1111') RETURNING id", (company, number, amount)).fetchone()
    assert row is not None
    conn.commit()
    invoice: uuid.UUID = row[0]
    return invoice


def test_insert_update_delete_write_one_entry_each(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(OUTSIDER)  # changing a tracked table needs no privilege on the log
    invoice = add_invoice(app)
    app.execute("UPDATE erp.invoices SET amount = 12.50, status = 'paid' WHERE id = %s", (invoice,))
    app.execute("DELETE FROM erp.invoices WHERE id = %s", (invoice,))
    app.commit()

    created, updated, deleted = entries(connect_as(SUPERUSER))
    row = {"id": str(invoice), "company_id": str(COMPANY), "franchise_id": None, "number": 1, "status": "open"}
    assert created == ("CREATE_INVOICE", "invoice", invoice, COMPANY, None, None, {**row, "amount": 10.00}, {})
    assert updated == ("UPDATE_INVOICE", "invoice", invoice, COMPANY, None, None,
                       {"amount": {"old": 10.00, "new": 12.50}, "status": {"old": "open", "new": "paid"}}, {})
    assert deleted == ("DELETE_INVOICE", "invoice", invoice, COMPANY, None, None,
                       {**row, "amount": 12.50, "status": "paid"}, {})


def test_excluded_columns_never_reach_the_log(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    invoice = add_invoice(app)
    app.execute("UPDATE erp.invoices SET card_number = '5500 0000 0000 0004' WHERE id = %s", (invoice,))
    app.execute("UPDATE erp.invoices SET card_number = '4000', amount = 11 WHERE id = %s", (invoice,))
    app.execute("DELETE FROM erp.invoices")
    app.commit()
    logged = connect_as(SUPERUSER).execute("SELECT action, details::text FROM audit.audit_logs").fetchall()
    assert [action for action, _ in logged] == ["CREATE_INVOICE", "UPDATE_INVOICE", "DELETE_INVOICE"]
    for _, details in logged:
        assert "card_number" not in details and "4111 1111" not in details and '"4000"' not in details


def test_an_update_that_changes_nothing_writes_nothing(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    add_invoice(app)
    app.execute("UPDATE erp.invoices SET amount = amount, status = status")
    app.execute("UPDATE erp.invoices SET amount = 99 WHERE false")
    app.execute("DELETE FROM erp.notes")
    app.commit()
    assert [e[0] for e in entries(connect_as(SUPERUSER))] == ["CREATE_INVOICE"]


def test_a_bulk_update_pairs_each_row_with_itself_even_when_its_key_changes(erp: psycopg.Connection[Any],
                                                                             connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    before = {add_invoice(app, number=n, amount=str(n)) for n in range(1, 51)}
    app.execute("UPDATE erp.invoices SET id = gen_random_uuid(), amount = amount * 10")
    app.commit()
    after = {row[0] for row in app.execute("SELECT id FROM erp.invoices").fetchall()}
    updates = entries(connect_as(SUPERUSER), "UPDATE_INVOICE")
    assert len(updates) == 50
    for _, _, entity_id, _, _, _, details, _ in updates:
        assert details["amount"]["new"] == details["amount"]["old"] * 10
        assert uuid.UUID(details["id"]["new"]) == entity_id
    assert {uuid.UUID(e[6]["id"]["old"]) for e in updates} == before
    assert {e[2] for e in updates} == after


def test_a_100000_row_update_is_captured_completely(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    app.execute("INSERT INTO erp.invoices (company_id, number, amount)"
                " SELECT %s, n, n FROM generate_series(1, 100000) n", (COMPANY,))
    app.execute("UPDATE erp.invoices SET status = 'overdue' WHERE number % 2 = 0")
    app.execute("UPDATE erp.invoices SET amount = amount + 1")
    app.commit()
    counts = dict(connect_as(SUPERUSER).execute("SELECT action, count(*) FROM audit.audit_logs GROUP BY 1").fetchall())
    assert counts == {"CREATE_INVOICE": 100_000, "UPDATE_INVOICE": 150_000}
    unmatched = connect_as(SUPERUSER).execute("""
        SELECT count(*) FROM erp.invoices i
        LEFT JOIN audit.audit_logs a ON a.entity_id = i.id AND a.action = 'UPDATE_INVOICE' AND a.details ? 'amount'
        WHERE a.id IS NULL OR (a.details #>> '{amount,new}')::numeric <> i.amount""").fetchone()
    assert unmatched == (0,)


def test_a_bulk_update_after_a_single_row_one_in_the_same_session_pairs_rows_by_a_linear_join(
        erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    """The plan of tracking's INSERT is kept for the session, made with the sizes of the statement that
    first ran it. After a single-row UPDATE it was a nested loop pairing old and new rows, and a bulk
    UPDATE of 4,000 rows in the same session took 50 s (0015.tracking-plans). auto_explain shows the
    plan the bulk UPDATE runs: its pairing must be a hash or merge join, linear at any size."""
    app = connect_as(WRITER, autocommit=True)
    app.execute("INSERT INTO erp.invoices (company_id, number, amount) SELECT %s, n, n FROM generate_series(1, 300) n",
                (COMPANY,))
    session = connect_as(SUPERUSER, autocommit=True)  # loading auto_explain takes a superuser
    plans: list[str] = []
    session.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    session.execute("LOAD 'auto_explain'")
    session.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
                    " SET client_min_messages = log")
    session.execute("UPDATE erp.invoices SET amount = amount + 1 WHERE number = 1")
    plans.clear()
    assert session.execute("UPDATE erp.invoices SET status = 'overdue'").rowcount == 300

    [pairing] = [plan for plan in plans if "INSERT INTO audit.audit_logs" in plan]
    # The nested loop read "Join Filter: ((row_number() OVER (?)) = (row_number() OVER (?)))".
    assert "Join Filter" not in pairing, pairing
    assert "Hash Full Join" in pairing or "Merge Full Join" in pairing, pairing
    counts = dict(session.execute("SELECT action, count(*) FROM audit.audit_logs GROUP BY 1").fetchall())
    assert counts == {"CREATE_INVOICE": 300, "UPDATE_INVOICE": 301}


def test_copy_into_a_tracked_table_is_captured(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    with app.cursor().copy("COPY erp.invoices (company_id, number, amount) FROM STDIN") as copy:
        for n in range(1, 1001):
            copy.write_row((COMPANY, n, n))
    app.commit()
    numbers = connect_as(SUPERUSER).execute(
        "SELECT array_agg((details->>'number')::int ORDER BY (details->>'number')::int) FROM audit.audit_logs"
        " WHERE action = 'CREATE_INVOICE'").fetchone()
    assert numbers == (list(range(1, 1001)),)


def test_company_and_franchise_come_from_the_row_else_from_the_context(erp: psycopg.Connection[Any],
                                                                      connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    app.execute("SELECT audit.set_context(company_id => %s, franchise_id => %s, user_id => %s)",
                (OTHER_COMPANY, FRANCHISE, USER))
    invoice = add_invoice(app, company=COMPANY)  # the row's own company wins
    app.execute("SELECT audit.set_context(company_id => %s)", (OTHER_COMPANY,))
    app.execute("INSERT INTO erp.notes (body) VALUES ('called the customer')")
    app.commit()
    (invoice_entry,) = entries(connect_as(SUPERUSER), "CREATE_INVOICE")
    (note_entry,) = entries(connect_as(SUPERUSER), "CREATE_NOTE")
    assert invoice_entry[2:6] == (invoice, COMPANY, FRANCHISE, USER)
    assert note_entry[3:6] == (OTHER_COMPANY, None, None)


def test_a_change_with_no_company_anywhere_is_refused_and_not_made(erp: psycopg.Connection[Any],
                                                                    connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    with pytest.raises(psycopg.Error) as refused:
        app.execute("INSERT INTO erp.notes (body) VALUES ('a'), ('b')")
    assert refused.value.sqlstate == "AU002"
    assert refused.value.diag.column_name == "company_id"
    assert "has no company" in str(refused.value) and "INSERT on erp.notes" in str(refused.value)
    app.rollback()
    assert app.execute("SELECT count(*) FROM erp.notes").fetchone() == (0,)
    assert count_entries(connect_as(SUPERUSER)) == 0


@pytest.mark.parametrize("role", [WRITER, OWNER, SUPERUSER])
def test_truncate_of_a_tracked_table_is_refused(erp: psycopg.Connection[Any], connect_as: ConnectAs,
                                                role: str) -> None:
    add_invoice(connect_as(WRITER))
    conn = connect_as(role)
    if role == WRITER:
        connect_as(OWNER, autocommit=True).execute("GRANT TRUNCATE ON erp.invoices, erp.notes TO app_writer")
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("TRUNCATE erp.invoices")
    assert refused.value.sqlstate == "AU005"
    assert "audit.disable_tracking('erp.invoices')" in (refused.value.diag.message_hint or "")
    conn.rollback()
    with pytest.raises(UntrackableChange), translate_errors():
        conn.execute("TRUNCATE erp.invoices, erp.notes")


def test_disabling_stops_tracking_and_keeps_the_entries(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    app = connect_as(WRITER)
    add_invoice(app)
    erp.execute("SELECT audit.disable_tracking('erp.invoices')")
    erp.execute("SELECT audit.disable_tracking('erp.invoices')")  # harmless twice
    add_invoice(app, number=2)
    erp.execute("TRUNCATE erp.invoices")  # the documented way
    assert [e[0] for e in entries(connect_as(SUPERUSER))] == ["CREATE_INVOICE"]
    assert erp.execute("SELECT table_name::text FROM audit.tracked_tables").fetchall() == [("erp.notes",)]


def test_enabling_twice_is_harmless_and_enabling_again_changes_the_settings(erp: psycopg.Connection[Any],
                                                                             connect_as: ConnectAs) -> None:
    erp.execute("SELECT audit.enable_tracking('erp.invoices', exclude_columns => '{card_number}')")
    tracked = "SELECT table_name::text, entity, exclude_columns, triggers_in_place FROM audit.tracked_tables ORDER BY 1"
    assert erp.execute(tracked).fetchall() == [("erp.invoices", "invoice", ["card_number"], True),
                                               ("erp.notes", "note", [], True)]
    erp.execute("SELECT audit.enable_tracking('erp.invoices', 'sales invoice', '{card_number, status}')")
    assert erp.execute(tracked).fetchone() == ("erp.invoices", "sales invoice", ["status", "card_number"], True)
    add_invoice(connect_as(WRITER))
    action, entity, details = connect_as(SUPERUSER).execute("SELECT action, entity, details FROM audit.audit_logs"
                                                            ).fetchone() or (None, None, None)
    assert (action, entity) == ("CREATE_SALES_INVOICE", "sales invoice")
    assert "status" not in details and "card_number" not in details
    assert erp.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'erp.invoices'::regclass").fetchone() == (4,)


def test_a_renamed_excluded_column_stays_excluded(erp: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    erp.execute("ALTER TABLE erp.invoices RENAME card_number TO payment_card")
    assert erp.execute("SELECT exclude_columns FROM audit.tracked_tables"
                       " WHERE table_name = 'erp.invoices'::regclass").fetchone() == (["payment_card"],)
    app = connect_as(WRITER)
    app.execute("INSERT INTO erp.invoices (company_id, number, amount, payment_card) VALUES (%s, 1, 1, '4111')",
                (COMPANY,))
    app.execute("UPDATE erp.invoices SET payment_card = '4000'")
    app.commit()
    assert [(e[0], "payment_card" in e[6]) for e in entries(connect_as(SUPERUSER))] == [("CREATE_INVOICE", False)]


def test_a_disabled_trigger_shows_in_tracked_tables(erp: psycopg.Connection[Any]) -> None:
    erp.execute("ALTER TABLE erp.invoices DISABLE TRIGGER audit_track_update")
    assert erp.execute("SELECT triggers_in_place FROM audit.tracked_tables"
                       " WHERE table_name = 'erp.invoices'::regclass").fetchone() == (False,)
    erp.execute("SELECT audit.enable_tracking('erp.invoices', exclude_columns => '{card_number}')")
    assert erp.execute("SELECT bool_and(triggers_in_place) FROM audit.tracked_tables").fetchone() == (True,)


@pytest.mark.parametrize(("table", "entity", "action"), [
    ("companies", "company", "CREATE_COMPANY"),
    ("addresses", "address", "CREATE_ADDRESS"),
    ("boxes", "box", "CREATE_BOX"),
    ("status", "status", "CREATE_STATUS"),
    ("stock_moves", "stock_move", "CREATE_STOCK_MOVE"),
])
def test_the_default_entity_is_the_table_name_made_singular(erp: psycopg.Connection[Any], connect_as: ConnectAs,
                                                            table: str, entity: str, action: str) -> None:
    erp.execute(f"CREATE TABLE erp.{table} (id uuid PRIMARY KEY, company_id uuid NOT NULL)")
    erp.execute(f"SELECT audit.enable_tracking('erp.{table}')")
    erp.execute(f"INSERT INTO erp.{table} VALUES (gen_random_uuid(), %s)", (COMPANY,))
    assert connect_as(SUPERUSER).execute("SELECT entity, action FROM audit.audit_logs").fetchone() == (entity, action)


ENABLE_ERRORS = {
    "no primary key": ("CREATE TABLE erp.t (id uuid)", "SELECT audit.enable_tracking('erp.t')", "has no primary key"),
    "integer key": ("CREATE TABLE erp.t (id int PRIMARY KEY)", "SELECT audit.enable_tracking('erp.t')",
                    "is of type integer, not uuid"),
    "two-column key": ("CREATE TABLE erp.t (a uuid, b uuid, PRIMARY KEY (a, b))",
                       "SELECT audit.enable_tracking('erp.t')", "has 2 columns (a, b)"),
    "unknown excluded column": ("CREATE TABLE erp.t (id uuid PRIMARY KEY)",
                                "SELECT audit.enable_tracking('erp.t', exclude_columns => '{id, pasword}')",
                                "does not have: pasword"),
    "null exclude_columns": ("CREATE TABLE erp.t (id uuid PRIMARY KEY)",
                             "SELECT audit.enable_tracking('erp.t', exclude_columns => NULL)", "must not be null"),
    "blank entity": ("CREATE TABLE erp.t (id uuid PRIMARY KEY)", "SELECT audit.enable_tracking('erp.t', ' ')",
                     "entity must not be blank"),
    "text company_id": ("CREATE TABLE erp.t (id uuid PRIMARY KEY, company_id text)",
                        "SELECT audit.enable_tracking('erp.t')", "company_id is text where tracking reads a uuid"),
    "a view": ("CREATE VIEW erp.t AS SELECT * FROM erp.invoices", "SELECT audit.enable_tracking('erp.t')",
               "is not a table"),
    "the log itself": ("SELECT 1", "SELECT audit.enable_tracking('audit.audit_logs')", "belongs to the audit log"),
    "null table": ("SELECT 1", "SELECT audit.enable_tracking(NULL)", "table_name must not be null"),
}


@pytest.mark.parametrize(("setup", "call", "words"), ENABLE_ERRORS.values(), ids=ENABLE_ERRORS.keys())
def test_enable_tracking_refuses_what_it_cannot_track(erp: psycopg.Connection[Any], setup: str, call: str,
                                                      words: str) -> None:
    erp.execute(setup)  # type: ignore[call-overload]
    with pytest.raises(InvalidTracking) as refused, translate_errors():
        erp.execute(call)  # type: ignore[call-overload]
    assert words in str(refused.value) and refused.value.sqlstate == "AU004"
    assert refused.value.parameter in {"table_name", "exclude_columns", "entity"}
    assert erp.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit_track_%' AND tgrelid NOT IN"
                       " ('erp.invoices'::regclass, 'erp.notes'::regclass)").fetchone() == (0,)


def test_a_missing_table_is_named(erp: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable, match='relation "erp.nothing" does not exist'):
        erp.execute("SELECT audit.enable_tracking('erp.nothing')")


def test_a_renamed_key_is_still_the_entity_id_and_a_retyped_one_is_refused(erp: psycopg.Connection[Any],
                                                                           connect_as: ConnectAs) -> None:
    erp.execute("ALTER TABLE erp.notes RENAME id TO note_id")
    app = connect_as(WRITER)
    app.execute("SELECT audit.set_context(company_id => %s)", (COMPANY,))
    (note,) = app.execute("INSERT INTO erp.notes (body) VALUES ('x') RETURNING note_id").fetchone() or (None,)
    app.commit()
    assert [e[2] for e in entries(connect_as(SUPERUSER))] == [note]
    erp.execute("ALTER TABLE erp.notes ALTER COLUMN note_id DROP DEFAULT, ALTER COLUMN note_id TYPE text")
    app.execute("SELECT audit.set_context(company_id => %s)", (COMPANY,))
    with pytest.raises(InvalidTracking, match="no longer a uuid"), translate_errors():
        app.execute("INSERT INTO erp.notes VALUES ('n-1', 'x')")


def test_only_writers_that_may_change_the_table_can_start_or_stop_tracking(erp: psycopg.Connection[Any],
                                                                          connect_as: ConnectAs) -> None:
    erp.execute("GRANT CREATE ON SCHEMA erp TO app_outsider, app_writer; GRANT TRIGGER ON erp.notes TO app_outsider")
    outsider = connect_as(OUTSIDER, autocommit=True)
    outsider.execute("CREATE TABLE erp.mine (id uuid PRIMARY KEY, company_id uuid NOT NULL)")
    # Not a writer: it could forge entries through a table of its own.
    for statement in ("SELECT audit.enable_tracking('erp.mine')",
                      "CREATE TRIGGER forge AFTER INSERT ON erp.mine FOR EACH STATEMENT"
                      " EXECUTE FUNCTION audit._track_changes('{\"entity\": \"invoice\"}')",
                      "SELECT audit.disable_tracking('erp.notes')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            outsider.execute(statement)  # type: ignore[call-overload]
    # A writer that does not own the table cannot drop its triggers, nor replace them.
    writer = connect_as(WRITER, autocommit=True)
    for statement in ("SELECT audit.disable_tracking('erp.invoices')", "SELECT audit.enable_tracking('erp.invoices')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
            writer.execute(statement)  # type: ignore[call-overload]
    # A writer may track a table it owns; a reader may see what is tracked.
    writer.execute("CREATE TABLE erp.own (id uuid PRIMARY KEY, company_id uuid NOT NULL)")
    writer.execute("SELECT audit.enable_tracking('erp.own')")
    assert len(connect_as(READER).execute("SELECT * FROM audit.tracked_tables").fetchall()) == 3


@tamper.VERIFIERS
def test_tracked_entries_seal_and_verify(erp: psycopg.Connection[Any], connect_as: ConnectAs,
                                         verify: tamper.Verifier) -> None:
    app = connect_as(WRITER)
    app.execute("SELECT audit.set_context(user_id => %s, extra => %s)",
                (USER, json.dumps({"request_id": "req-1", "client_addr": "203.0.113.9"})))
    app.execute("INSERT INTO erp.invoices (company_id, number, amount) VALUES (%s, 1, 10)", (COMPANY,))
    app.execute("UPDATE erp.invoices SET amount = 1")
    app.commit()
    assert [block[2] for block in ledger.seal(connect_as(OWNER))] == [2]
    ok, report, _, _ = verify(connect_as(READER), COMPANY)
    assert ok, report
    tamper.as_superuser_without_triggers(connect_as, "UPDATE audit.audit_logs SET context = '{}'"
                                                     " WHERE action = 'UPDATE_INVOICE'")
    assert not verify(connect_as(READER), COMPANY)[0]
