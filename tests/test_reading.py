"""Reading the log: history, search with keyset pages, tenant readers, and the log, tail and export commands."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit_py import AsyncAuditService, AuditEntry, AuditRecord, AuditService, InvalidQuery, ledger, reading
from audit_py.errors import translate_errors
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER, OWNING_ROLE, READER, TENANT, WRITER, ConnectAs

COMPANY, OTHER = uuid.uuid4(), uuid.uuid4()
FRANCHISE, USER = uuid.uuid4(), uuid.uuid4()
INVOICE = uuid.uuid4()
AsyncConnectAs = Callable[..., Any]


@pytest.fixture
def log(connect_as: ConnectAs) -> None:
    """COMPANY: 250 entries in 5 transactions (so many share a created_at), of two franchises and two
    users, 40 of them on INVOICE; OTHER: 50 entries, 10 of them on INVOICE too."""
    writer = connect_as(WRITER)
    audit = AuditService(writer)
    for batch in range(5):
        audit.record_many(
            AuditEntry(COMPANY, "UPDATE_INVOICE" if n % 5 == 0 else "CREATE_ORDER",
                       "invoice" if n % 5 == 0 else "order", INVOICE if n % 5 == 0 else uuid.uuid4(),
                       {"batch": batch, "n": n}, USER if n % 2 else None, FRANCHISE if n % 3 else None)
            for n in range(50))
        writer.commit()
    audit.record_many(AuditEntry(OTHER, "UPDATE_INVOICE", "invoice", INVOICE, {"n": n}) for n in range(10))
    audit.record_many(AuditEntry(OTHER, "CREATE_ORDER", "order", uuid.uuid4(), {"n": n}) for n in range(40))
    writer.commit()


def all_pages(audit: AuditService, limit: int, **filters: Any) -> list[list[Any]]:
    pages, after = [], None
    while True:
        page = audit.search(COMPANY, limit=limit, after=after, **filters)
        pages.append(page.entries)
        if page.next is None:
            return pages
        after = page.next


def newest_first(conn: psycopg.Connection[Any], where: str = "true", params: tuple[Any, ...] = ()) -> list[uuid.UUID]:
    return [row[0] for row in conn.execute(
        f"SELECT id FROM audit.audit_logs WHERE company_id = %s AND {where} ORDER BY created_at DESC, id DESC",
        (COMPANY, *params)).fetchall()]


@pytest.mark.usefixtures("log")
@pytest.mark.parametrize(("filters", "where", "params"), [
    ({}, "true", ()),
    ({"franchise_id": FRANCHISE}, "franchise_id = %s", (FRANCHISE,)),
    ({"user_id": USER}, "user_id = %s", (USER,)),
    ({"action": "UPDATE_INVOICE"}, "action = %s", ("UPDATE_INVOICE",)),
    ({"entity": "order", "user_id": USER}, "entity = %s AND user_id = %s", ("order", USER)),
], ids=["company", "franchise", "user", "action", "entity and user"])
def test_search_pages_cover_each_entry_once_newest_first(connect_as: ConnectAs, filters: dict[str, Any],
                                                          where: str, params: tuple[Any, ...]) -> None:
    audit = AuditService(connect_as(READER))
    pages = all_pages(audit, 7, **filters)
    assert all(len(page) == 7 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 7
    assert [e.id for page in pages for e in page] == newest_first(connect_as(SUPERUSER), where, params)


@pytest.mark.usefixtures("log")
def test_search_by_time_range(connect_as: ConnectAs) -> None:
    superuser = connect_as(SUPERUSER)
    times = [row[0] for row in superuser.execute(
        "SELECT DISTINCT created_at FROM audit.audit_logs WHERE company_id = %s ORDER BY 1", (COMPANY,)).fetchall()]
    assert len(times) == 5
    page = AuditService(connect_as(READER)).search(COMPANY, since=times[1], until=times[3], limit=1000)
    assert {e.created_at for e in page.entries} == {times[1], times[2]} and page.next is None
    assert len(page.entries) == 100


@pytest.mark.usefixtures("log")
def test_entries_written_between_pages_neither_shift_nor_repeat_them(connect_as: ConnectAs) -> None:
    audit = AuditService(connect_as(READER))
    first = audit.search(COMPANY, limit=100)
    AuditService(writer := connect_as(WRITER)).record(COMPANY, "LATE", "order", uuid.uuid4())
    writer.commit()
    second = audit.search(COMPANY, limit=100, after=first.next)
    expected = newest_first(connect_as(SUPERUSER), "action <> 'LATE'")
    assert [e.id for e in first.entries + second.entries] == expected[:200]


@pytest.mark.usefixtures("log")
def test_history_is_every_entry_of_one_entity_oldest_first(connect_as: ConnectAs) -> None:
    history = AuditService(connect_as(READER)).history("invoice", INVOICE)
    expected = connect_as(SUPERUSER).execute(
        "SELECT id FROM audit.audit_logs WHERE entity = 'invoice' AND entity_id = %s ORDER BY created_at, id",
        (INVOICE,)).fetchall()
    assert [e.id for e in history] == [row[0] for row in expected] and len(history) == 60
    assert AuditService(connect_as(READER)).history("invoice", uuid.uuid4()) == []


def test_history_is_what_one_snapshot_held(connect_as: ConnectAs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers commit after every statement the reader sends: whatever the size of the history,
    none of what they wrote shows, and nothing it held is missing."""
    invoice = uuid.uuid4()
    writer = connect_as(WRITER, autocommit=True)
    AuditService(writer).record_many(AuditEntry(COMPANY, "UPDATE_INVOICE", "invoice", invoice, {"n": n})
                                     for n in range(2500))
    before = [row[0] for row in connect_as(SUPERUSER).execute(
        "SELECT id FROM audit.audit_logs WHERE entity_id = %s ORDER BY created_at, id", (invoice,)).fetchall()]
    reader = connect_as(READER, autocommit=True)
    send = psycopg.Cursor.execute

    def execute_then_a_writer_commits(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        result = send(cursor, *args, **kwargs)
        if cursor.connection is reader:
            writer.execute("SELECT audit.record_audit(%s, 'LATE', 'invoice', %s)", (COMPANY, invoice))
        return result

    monkeypatch.setattr(psycopg.Cursor, "execute", execute_then_a_writer_commits)
    history = AuditService(reader).history("invoice", invoice)
    monkeypatch.undo()
    assert [e.id for e in history] == before


def test_cursors_are_the_same_text_in_sql_and_python(connect_as: ConnectAs) -> None:
    from audit_py import queries

    writer = connect_as(WRITER)
    AuditService(writer).record_many(AuditEntry(COMPANY, "A", "order", uuid.uuid4()) for _ in range(3))
    writer.commit()
    rows = connect_as(READER).execute(
        "SELECT id, created_at, cursor, audit.page_cursor(created_at, id) FROM audit.search(%s)", (COMPANY,)).fetchall()
    records = AuditService(connect_as(READER)).search(COMPANY).entries
    assert [row[2] for row in rows] == [row[3] for row in rows] == [queries.encode_cursor(r) for r in records]
    # Instants far from now, before 1970 included, keep every microsecond.
    for instant in ("1969-12-31 23:59:59.999999+00", "1900-01-01 00:00:00.000001+00", "2262-04-11 23:47:16.854775+00"):
        sql_cursor, exact = connect_as(READER).execute(
            "SELECT audit.page_cursor(%s::timestamptz, %s), %s::timestamptz", (instant, rows[0][0], instant)).fetchone()  # type: ignore[misc]
        record = records[0].__class__(**{**records[0].__dict__, "created_at": exact, "id": rows[0][0]})
        assert sql_cursor == queries.encode_cursor(record), instant
        position = connect_as(READER).execute("SELECT * FROM audit._cursor_position('t', %s)", (sql_cursor,)).fetchone()
        assert position == (exact, rows[0][0])


def _pages_of_7(reader: psycopg.Connection[Any], call: str, key: uuid.UUID) -> list[uuid.UUID]:
    """Every id a SQL client reads, 7 at a time, passing each page's last cursor as `after`."""
    seen: list[uuid.UUID] = []
    after = None
    while True:
        rows = reader.execute(f"SELECT id, cursor FROM {call}, page_size => 7, after => %s)", (key, after)).fetchall()
        seen += [row[0] for row in rows]
        if len(rows) < 7:
            return seen
        after = rows[-1][1]


@pytest.mark.usefixtures("log")
def test_a_sql_or_javascript_client_pages_by_cursor_without_skipping_entries_that_share_an_instant(
        connect_as: ConnectAs) -> None:
    """Every page of 7 (entries of one transaction share created_at): the cursor, never a Date."""
    reader = connect_as(READER)
    assert _pages_of_7(reader, "audit.search(%s", COMPANY) == newest_first(connect_as(SUPERUSER))
    history = _pages_of_7(reader, "audit.history('invoice', %s", INVOICE)
    assert history == [e.id for e in AuditService(reader).history("invoice", INVOICE)] and len(history) == 60


@pytest.mark.usefixtures("log")
def test_a_cursor_printed_by_the_command_pages_in_sql(connect_as: ConnectAs) -> None:
    first = AuditService(connect_as(READER)).search(COMPANY, limit=30)
    rows = connect_as(READER).execute("SELECT id FROM audit.search(%s, page_size => 30, after => %s)",
                                      (COMPANY, first.next)).fetchall()
    assert [e.id for e in first.entries] + [row[0] for row in rows] == newest_first(connect_as(SUPERUSER))[:60]


@pytest.mark.usefixtures("log")
def test_sql_users_page_the_same_way(connect_as: ConnectAs) -> None:
    reader = connect_as(READER)
    page_1 = reader.execute("SELECT created_at, id FROM audit.search(%s, page_size => 100)", (COMPANY,)).fetchall()
    last_at, last_id = page_1[-1]
    page_2 = reader.execute("SELECT id FROM audit.search(%s, page_size => 100, after_created_at => %s,"
                            " after_id => %s)", (COMPANY, last_at, last_id)).fetchall()
    assert [row[1] for row in page_1] + [row[0] for row in page_2] == newest_first(connect_as(SUPERUSER))[:200]
    history = reader.execute("SELECT id FROM audit.history('invoice', %s, page_size => 1000)", (INVOICE,)).fetchall()
    assert len(history) == 60


async def test_the_async_twins(aconnect_as: AsyncConnectAs, connect_as: ConnectAs, log: None) -> None:
    audit = AsyncAuditService(await aconnect_as(READER))
    page = await audit.search(COMPANY, user_id=USER, limit=1000)
    assert [e.id for e in page.entries] == newest_first(connect_as(SUPERUSER), "user_id = %s", (USER,))
    assert len(await audit.history("invoice", INVOICE)) == 60


QUERY_ERRORS = {
    "no company": ("SELECT * FROM audit.search(NULL)", "company_id"),
    "page too large": (f"SELECT * FROM audit.search('{COMPANY}', page_size => 100001)", "page_size"),
    "half a cursor": (f"SELECT * FROM audit.search('{COMPANY}', after_id => gen_random_uuid())", "after_created_at"),
    "since after until": (f"SELECT * FROM audit.search('{COMPANY}', since => now(), until => now() - interval '1 day')",
                          "since"),
    "history of nothing": ("SELECT * FROM audit.history(NULL, gen_random_uuid())", "entity"),
    "not a cursor": (f"SELECT * FROM audit.search('{COMPANY}', after => 'bm90IGEgY3Vyc29y')", "after"),
    "not base64": ("SELECT * FROM audit.history('e', gen_random_uuid(), after => '%%%')", "after"),
    "a cursor re-encoded": (f"SELECT * FROM audit.search('{COMPANY}', after => audit.page_cursor(now(), "
                            "gen_random_uuid()) || 'AA')", "after"),
    "cursor and pair": (f"SELECT * FROM audit.search('{COMPANY}', after_created_at => now(),"
                        f" after_id => gen_random_uuid(), after => audit.page_cursor(now(), gen_random_uuid()))",
                        "after"),
}


@pytest.mark.parametrize(("statement", "parameter"), QUERY_ERRORS.values(), ids=QUERY_ERRORS.keys())
def test_bad_queries_are_refused_naming_the_parameter(connect_as: ConnectAs, statement: str, parameter: str) -> None:
    with pytest.raises(InvalidQuery) as refused, translate_errors():
        connect_as(READER).execute(statement)  # type: ignore[call-overload]
    assert refused.value.sqlstate == "AU007" and refused.value.parameter == parameter


def test_a_bad_cursor_or_limit_is_refused(connect_as: ConnectAs) -> None:
    audit = AuditService(connect_as(READER))
    for arguments in ({"after": "not-a-cursor"}, {"limit": 0}, {"limit": 10_001}):
        with pytest.raises(InvalidQuery) as refused:
            audit.search(COMPANY, **arguments)
        assert refused.value.parameter in {"after", "limit"}


@pytest.mark.usefixtures("log")
def test_a_tenant_reader_sees_its_company_and_nothing_else(connect_as: ConnectAs) -> None:
    ledger.seal(connect_as(OWNER))
    tenant = connect_as(TENANT)
    queries = ["SELECT DISTINCT company_id FROM audit.audit_logs", "SELECT DISTINCT company_id FROM audit.blocks",
               f"SELECT DISTINCT company_id FROM audit.history('invoice', '{INVOICE}', page_size => 1000)",
               f"SELECT DISTINCT company_id FROM audit.search('{OTHER}')",
               f"SELECT DISTINCT company_id FROM audit.search('{COMPANY}')"]
    for query in queries:  # no company in the context: nothing at all
        assert tenant.execute(query).fetchall() == []  # type: ignore[call-overload]
    tenant.rollback()
    with AuditService(tenant).context(company_id=COMPANY):
        seen = [tenant.execute(query).fetchall() for query in queries]  # type: ignore[call-overload]
    assert seen == [[(COMPANY,)], [(COMPANY,)], [(COMPANY,)], [], [(COMPANY,)]]
    with AuditService(tenant).context(company_id=COMPANY):
        assert tenant.execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = %s", (OTHER,)
                              ).fetchone() == (0,)
        assert len(AuditService(tenant).history("invoice", INVOICE)) == 50
    for statement in ("SELECT audit.verify(gen_random_uuid())", "SELECT audit.digest()",
                      "SELECT audit.record_audit(gen_random_uuid(), 'X', 'x', gen_random_uuid())"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenant.execute(statement)  # type: ignore[call-overload]
        tenant.rollback()


@pytest.mark.usefixtures("log")
def test_a_pinned_tenant_login_reads_its_companies_whatever_its_context_names(connect_as: ConnectAs) -> None:
    owner = connect_as(OWNER, autocommit=True)
    owner.execute(f"SELECT audit.pin_tenant('{TENANT}', %s)", (COMPANY,))
    owner.execute(f"SELECT audit.pin_tenant('{TENANT}', %s)", (COMPANY,))  # harmless twice
    tenant = connect_as(TENANT)
    count = "SELECT count(*) FROM audit.audit_logs"
    with AuditService(tenant).context(company_id=OTHER):
        assert tenant.execute(count).fetchone() == (0,)
        assert tenant.execute("SELECT count(*) FROM audit.search(%s)", (OTHER,)).fetchone() == (0,)
    with AuditService(tenant).context(company_id=COMPANY):
        assert tenant.execute(count).fetchone() == (250,)
    for statement in ("SELECT * FROM audit.tenant_logins", f"SELECT audit.pin_tenant('{TENANT}', '{OTHER}')",
                      f"SELECT audit.unpin_tenant('{TENANT}')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tenant.execute(statement)  # type: ignore[call-overload]
        tenant.rollback()
    owner.execute(f"SELECT audit.pin_tenant('{TENANT}', %s)", (OTHER,))
    with AuditService(tenant).context(company_id=OTHER):
        assert tenant.execute(count).fetchone() == (50,)
    owner.execute(f"SELECT audit.unpin_tenant('{TENANT}')")
    assert owner.execute("SELECT count(*) FROM audit.tenant_logins").fetchone() == (0,)


def test_the_reader_and_the_owning_role_still_see_everything(connect_as: ConnectAs, log: None) -> None:
    for role in (READER, OWNING_ROLE):
        assert connect_as(role).execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (300,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the installing login reads nothing
        connect_as(OWNER).execute("SELECT count(*) FROM audit.audit_logs")


def run_cli(pg_server: ThrowawayServer, dbname: str, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_py", *args, "--dsn", pg_server.conninfo_for(dbname, user=role)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.usefixtures("log")
def test_log_prints_json_lines_when_piped_and_the_next_cursor(pg_server: ThrowawayServer,
                                                             postgresql: psycopg.Connection[Any]) -> None:
    result = run_cli(pg_server, postgresql.info.dbname, READER, "log", "--company", str(COMPANY),
                     "--user", str(USER), "--limit", "5")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5 and {line["user_id"] for line in lines} == {str(USER)}
    cursor = result.stderr.split("--after ")[1].strip()
    more = run_cli(pg_server, postgresql.info.dbname, READER, "log", "--company", str(COMPANY), "--user", str(USER),
                   "--limit", "5", "--after", cursor)
    assert not {line["id"] for line in lines} & {json.loads(line)["id"] for line in more.stdout.splitlines()}
    history = run_cli(pg_server, postgresql.info.dbname, TENANT, "log", "--company", str(COMPANY),
                      "--entity", "invoice", "--entity-id", str(INVOICE))
    assert len(history.stdout.splitlines()) == 50, history.stderr
    bad = run_cli(pg_server, postgresql.info.dbname, READER, "log", "--company", str(COMPANY), "--after", "x")
    assert bad.returncode == 2 and "is not a cursor" in bad.stderr


def test_tail_follows_in_order_and_resumes_without_skipping_or_repeating(pg_server: ThrowawayServer,
                                                                        postgresql: psycopg.Connection[Any],
                                                                        connect_as: ConnectAs) -> None:
    conninfo = pg_server.conninfo_for(postgresql.info.dbname, user=READER)
    writer = connect_as(WRITER)
    audit = AuditService(writer)
    audit.record(COMPANY, "BEFORE", "order", uuid.uuid4())
    writer.commit()
    seen: list[str] = []
    polls = iter([False, False, True])
    follower = reading.follow(conninfo, None, None, 0.01, last=1, stop=polls)
    record, position = next(follower)
    seen.append(record.action)
    # A transaction left open across polls: what commits after it is held back until it ends.
    slow = connect_as(WRITER)
    AuditService(slow).record(COMPANY, "SLOW", "order", uuid.uuid4())
    for n in range(3):
        audit.record(OTHER, f"FAST_{n}", "order", uuid.uuid4())
        writer.commit()
    seen += [r.action for r, _ in follower]
    assert seen == ["BEFORE"]  # nothing after the open transaction is final yet
    slow.commit()
    resumed = reading.follow(conninfo, None, position, 0.01, stop=iter([True]))
    assert [r.action for r, _ in resumed] == ["SLOW", "FAST_0", "FAST_1", "FAST_2"]
    only_other = reading.follow(conninfo, OTHER, position, 0.01, stop=iter([True]))
    assert [r.action for r, _ in only_other] == ["FAST_0", "FAST_1", "FAST_2"]


def test_tail_goes_on_after_losing_its_connection(pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any],
                                                   connect_as: ConnectAs) -> None:
    writer = connect_as(WRITER)
    AuditService(writer).record(COMPANY, "A", "order", uuid.uuid4())
    writer.commit()
    conninfo = pg_server.conninfo_for(postgresql.info.dbname, user=READER)
    follower = reading.follow(conninfo, None, None, 0.01, last=1, stop=iter([False] * 6 + [True]))
    seen = [next(follower)[0].action]
    killed = connect_as(SUPERUSER).execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                           " WHERE application_name = 'audit-py tail'").fetchone()
    assert killed == (1,)
    for action in ("B", "C"):
        AuditService(writer).record(COMPANY, action, "order", uuid.uuid4())
        writer.commit()
    seen += [record.action for record, _ in follower]
    assert seen == ["A", "B", "C"]


def test_tail_prints_the_latest_entries_as_json_lines(pg_server: ThrowawayServer,
                                                      postgresql: psycopg.Connection[Any], log: None) -> None:
    result = run_cli(pg_server, postgresql.info.dbname, READER, "tail", "-n", "3", "--company", str(OTHER))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["company_id"] for line in result.stdout.splitlines()] == [str(OTHER)] * 3
    assert "resume with: --from-position" in result.stderr


@pytest.mark.usefixtures("log")
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_a_company_oldest_first(pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any],
                                               connect_as: ConnectAs, tmp_path: Path, fmt: str) -> None:
    writer = connect_as(WRITER)
    AuditService(writer).record(COMPANY, "ODD", "order", uuid.uuid4(),
                                {"path": "C:\\temp\\new", "quote": "\"", "tab": "\t", "line": "a\nb", "é": "✓"})
    writer.commit()
    out = tmp_path / f"company.{fmt}"
    result = run_cli(pg_server, postgresql.info.dbname, TENANT, "export", "--company", str(COMPANY), "--format", fmt,
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"251 entries written to {out}")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        details = [row["details"] for row in rows]
    else:
        rows = list(csv.DictReader(out.open(newline="")))
        details = [json.loads(row["details"]) for row in rows]
    expected = connect_as(SUPERUSER).execute(
        "SELECT id::text FROM audit.audit_logs WHERE company_id = %s ORDER BY created_at, id", (COMPANY,)).fetchall()
    assert [row["id"] for row in rows] == [row[0] for row in expected]
    assert details[-1] == {"path": "C:\\temp\\new", "quote": "\"", "tab": "\t", "line": "a\nb", "é": "✓"}
    assert all(row["txid"] for row in rows)


@pytest.mark.usefixtures("log")
def test_export_of_a_time_range(pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any],
                                connect_as: ConnectAs, tmp_path: Path) -> None:
    times = [row[0] for row in connect_as(SUPERUSER).execute(
        "SELECT DISTINCT created_at FROM audit.audit_logs WHERE company_id = %s ORDER BY 1", (COMPANY,)).fetchall()]
    out = tmp_path / "range.jsonl"
    since, until = times[1].isoformat(), (times[1] + timedelta(microseconds=1)).isoformat()
    result = run_cli(pg_server, postgresql.info.dbname, READER, "export", "--company", str(COMPANY),
                     "--since", since, "--until", until, "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 50 and {datetime.fromisoformat(row["created_at"]) for row in rows} == {times[1]}


@pytest.fixture
def exported(log: None, pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any], connect_as: ConnectAs,
             tmp_path: Path) -> Path:
    """A sealed log, then an unsealed entry with context and awkward details, exported by a tenant reader."""
    ledger.seal(connect_as(OWNER))
    writer = connect_as(WRITER)
    with AuditService(writer).context(request_id="req-\\9", note="é ✓"):
        AuditService(writer).record(COMPANY, "ODD", "order", uuid.uuid4(), {"big": 12345678901234567890.123456789})
    writer.execute("""SELECT audit.set_context(extra => '{"k": [1.50, null, {"b": "\\u0001\\\\"}]}')""")
    odd = {"path": "C:\\new", "ctl": "\x01\t", "n": -0.000001, "e": 1e20, "list": [], "o": {}}
    AuditService(writer).record(COMPANY, "ODDER", "order", uuid.uuid4(), odd)
    writer.commit()
    ledger.seal(connect_as(OWNER))
    AuditService(writer).record(COMPANY, "UNSEALED", "order", uuid.uuid4())
    writer.commit()
    out = tmp_path / "company.jsonl"
    result = run_cli(pg_server, postgresql.info.dbname, TENANT, "export", "--company", str(COMPANY), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"253 entries written to {out}, and the company's chain to {out}.chain.json"
    return out


def verify_offline(export: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_py", "verify", "--export", str(export)],
                          capture_output=True, text=True, timeout=60)


def test_an_export_verifies_offline(exported: Path) -> None:
    """Consistent, but only a digest kept elsewhere authenticates a chain file (tests/test_verifiers.py)."""
    result = verify_offline(exported)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"OK         Company {COMPANY}: 2 blocks and 252 sealed entries verified offline, from a complete export;"
        " 1 entries not sealed yet, which nothing can vouch for.",
        "UNVERIFIED The chain file is unauthenticated: whoever can edit the export can recompute it. Give --digest"
        " (and --public-key) to prove it."]


def _edit(export: Path, change: Callable[[list[str]], list[str]]) -> None:
    export.write_text("".join(change(export.read_text().splitlines(keepends=True))))


TAMPERINGS: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "a changed detail": (lambda lines: [lines[0].replace('"batch": 0', '"batch": 9')] + lines[1:],
                         "differs from the one sealed"),
    "a removed entry": (lambda lines: lines[1:], "is missing from the export"),
    "a forged entry": (lambda lines: [lines[5].replace(lines[5][7:43], str(uuid.uuid4()))] + lines,
                       "no block holds it"),
    "a changed context": (lambda lines: [line.replace("req-", "REQ-") for line in lines],
                          "differs from the one sealed"),
}


@pytest.mark.parametrize(("change", "words"), TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_export_is_caught_offline(exported: Path, change: Callable[[list[str]], list[str]],
                                             words: str) -> None:
    _edit(exported, change)
    result = verify_offline(exported)
    assert result.returncode == 1 and result.stdout.startswith("TAMPERED") and words in result.stdout, result.stdout


def test_a_tampered_chain_file_is_caught_offline(exported: Path) -> None:
    chain = Path(f"{exported}.chain.json")
    document = json.loads(chain.read_text())
    document["blocks"][0]["entry_hashes"][0] = "00" * 32
    chain.write_text(json.dumps(document))
    result = verify_offline(exported)
    assert result.returncode == 1 and "block 1 was rewritten" in result.stdout, result.stdout


def test_the_table_prints_one_line_per_entry_and_no_control_character() -> None:
    """A writer stores any action: on a terminal it must not forge a row or drive the terminal."""
    import io

    forged = AuditRecord(uuid.uuid4(), uuid.uuid4(), None, None,
                         "APPROVE\n2026-01-01 00:00:00  DELETE_NOTHING  invoice \x1b[8m", "invoice\x1b]0;owned\x07",
                         uuid.uuid4(), {"note": "\x9b2J", "rtl": "\u202e"}, datetime(2026, 1, 1, tzinfo=timezone.utc),
                         {})
    out = io.StringIO()
    reading.as_table([forged], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # the header and the one entry
    assert not any(char in out.getvalue() for char in "\x1b\x07\x9b\u202e"), repr(out.getvalue())
    assert "APPROVE\\n2026" in lines[1]


def test_an_export_holds_the_very_json_lines_of_the_text_format(connect_as: ConnectAs, tmp_path: Path) -> None:
    """Sent as CSV that never quotes, each line is the JSON that COPY's text format carries with its
    backslashes doubled: the same bytes, whatever the entries hold."""
    company = uuid.uuid4()
    awkward = [{"path": "C:\\new\\.", "quote": "\"\\\"", "ctl": "\x01\x02\x7f\r\n\t", "sep": "\u2028 𝄞 é"},
               {"\\.": "\\.", "\x01": ["\\", "\x02"], "n": "-1e-7"}, {}]
    writer = connect_as(WRITER)
    with AuditService(writer).context(request_id="\\.\x01", note="\r\n"):
        for details in awkward:
            AuditService(writer).record(company, "A\\.", "e\x01\"", uuid.uuid4(), details)
    writer.execute("SELECT audit.record_audit(%s, E'\\\\.', 'e', %s, %s::jsonb)",
                   (company, uuid.uuid4(), '{"v": ' + "[" * 1500 + "]" * 1500 + "}"))
    writer.commit()
    reader = connect_as(READER)
    out = tmp_path / "company.jsonl"
    assert reading.export(reader, company, None, None, "jsonl", out, None) == 4
    reader.commit()
    text_format = reading.EXPORT_JSON_SQL.replace("{where}", "WHERE company_id = %(company_id)s")
    text_format = text_format[:text_format.rindex(" TO STDOUT")] + " TO STDOUT"
    with reader.transaction(), reader.cursor() as cur:
        reader.execute("SET LOCAL DateStyle = 'ISO'")
        with cur.copy(text_format, {"company_id": company}) as copy:
            expected = b"".join(bytes(data) for data in copy).replace(b"\\\\", b"\\")
    assert out.read_bytes() == expected
    lines = expected.split(b"\n")  # U+2028 ends no line
    assert lines[-1] == b"" and sum(b"[" * 1500 in line for line in lines) == 1
    read = [json.loads(line)["details"] for line in lines[:-1] if b"[" * 1500 not in line]
    assert sorted(json.dumps(details, sort_keys=True) for details in read) == sorted(
        json.dumps(details, sort_keys=True) for details in awkward)


def test_an_export_is_synced_to_disk_before_it_is_renamed_into_place(
        connect_as: ConnectAs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash of the machine after `export` returned cannot leave an empty or half file under the
    name: the file and its chain are synced, then renamed, then the directory's entries synced."""
    company = uuid.uuid4()
    writer = connect_as(WRITER)
    AuditService(writer).record(company, "A", "e", uuid.uuid4(), {})
    writer.commit()
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = reading.os.fsync, Path.replace

    def fsync(descriptor: int) -> None:
        events.append(("sync", Path(f"/proc/self/fd/{descriptor}").readlink().name))
        real_fsync(descriptor)

    def replace(self: Path, target: Any) -> Path:
        events.append(("rename", self.name))
        return real_replace(self, target)

    monkeypatch.setattr(reading.os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    out = tmp_path / "company.jsonl"
    assert reading.export(connect_as(READER), company, None, None, "jsonl", out, None) == 1
    partial, chain = ".company.jsonl.partial", ".company.jsonl.partial.chain.json"
    assert out.exists() and reading.offline.chain_path(out).exists()
    assert events == [("sync", partial), ("sync", chain), ("rename", chain), ("rename", partial),
                      ("sync", tmp_path.name)], events


def test_an_export_starts_its_pages_writing_back_as_they_fill(
        connect_as: ConnectAs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each filled stretch of the file is handed to the kernel's writeback as the export streams, in
    order and without gaps, so that the fsync at the end waits for the last stretch only; the bytes
    are those of an export without it."""
    company = uuid.uuid4()
    writer = connect_as(WRITER)
    AuditService(writer).record_many([AuditEntry(company, "A", "e", uuid.uuid4(), {"n": n}) for n in range(3000)])
    writer.commit()
    plain = tmp_path / "plain.jsonl"
    reading.export(connect_as(READER), company, None, None, "jsonl", plain, None)
    advised: list[tuple[int, int]] = []
    real_fadvise = reading.os.posix_fadvise

    def fadvise(descriptor: int, offset: int, length: int, advice: int) -> None:
        assert advice == reading.os.POSIX_FADV_DONTNEED
        advised.append((offset, length))
        real_fadvise(descriptor, offset, length, advice)

    monkeypatch.setattr(reading.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(reading._WriteBehind, "EVERY", 64 << 10)
    out = tmp_path / "behind.jsonl"
    assert reading.export(connect_as(READER), company, None, None, "jsonl", out, None) == 3000
    assert out.read_bytes() == plain.read_bytes()
    size = out.stat().st_size
    assert len(advised) >= 2  # written a thousand rows at a time: a stretch of ~330 kB each
    assert [offset for offset, _ in advised] == [0] + [sum(length for _, length in advised[:n])
                                                      for n in range(1, len(advised))]
    assert all(length >= 64 << 10 for _, length in advised) and sum(length for _, length in advised) <= size


def test_a_chain_writes_each_entry_id_as_uuid_text_does() -> None:
    for raw in [bytes(16), b"\xff" * 16, *(uuid.uuid4().bytes for _ in range(100))]:
        assert reading.offline._uuid_text(raw) == str(uuid.UUID(bytes=raw))
