"""`audit-py demo`: the log at work, from SQL and from Python, and its refusals."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timezone
from functools import partial
from typing import Any

import psycopg

from . import ledger
from .errors import AuditError, translate_errors
from .models import AuditEntry
from .schema import migrate
from .server import ServerError, throwaway_server
from .service import AuditService

COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c001")
FRANCHISE = uuid.UUID("00000000-0000-4000-8000-00000000f001")
ALICE = uuid.UUID("00000000-0000-4000-8000-0000000a11ce")

# details as PostgreSQL prints it: numbers keep their scale (80.00, not 80.0).
LOG_QUERY = """
SELECT created_at, company_id, franchise_id, user_id, action, entity, entity_id, details::text
FROM audit.audit_logs WHERE company_id = %s ORDER BY created_at, action
"""


def run(dsn: str | None) -> int:
    throwaway = dsn is None
    with ExitStack() as stack:
        if dsn is None:
            try:
                server = stack.enter_context(throwaway_server())
            except ServerError as error:
                print(f"audit-py demo: {error}", file=sys.stderr)
                return 1
            dsn = server.conninfo
            print(f"Started a throwaway PostgreSQL {server.version} ({server.bindir}).")
        applied = migrate(dsn)
        print(f"Migrations applied: {', '.join(applied) or 'none needed, already up to date'}.")
        with psycopg.connect(dsn) as conn:
            # Entries cannot be deleted: in a database of the user's, the only
            # way to leave no trace is to never commit them.
            _tour(conn, commit_each_step=throwaway)
            conn.rollback()
    if throwaway:
        print("\nDone; the throwaway server is removed.")
    else:
        print("\nThe demo ran in one transaction, rolled back: it left no entry in your database.")
    return 0


def _tour(conn: psycopg.Connection[tuple[object, ...]], commit_each_step: bool) -> None:
    """Without commit_each_step, every step stays in one transaction, for the caller to roll back."""
    audit = AuditService(conn)

    def step(title: str) -> None:
        if commit_each_step:
            conn.commit()
        print(f"\n{title}")

    who, superuser = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
                                  ).fetchone() or ("?", False)
    if not superuser:
        # The installing login holds no role of the log's but audit_admin; it may grant itself the
        # others, here for the demo's one transaction, which is rolled back.
        conn.execute("GRANT audit_writer, audit_reader TO CURRENT_USER")
    conn.execute("CREATE TEMP TABLE demo_invoices (id uuid PRIMARY KEY, amount numeric NOT NULL)")

    step("1. From SQL: SELECT audit.record_audit(...), in named notation")
    entry_id = conn.execute(
        "SELECT audit.record_audit(company_id => %s, action => 'LOGIN', entity => 'user', entity_id => %s,"
        " details => '{\"ip\": \"192.0.2.7\"}', user_id => %s)",
        (COMPANY, ALICE, ALICE),
    ).fetchone()
    print(f"   -> entry {entry_id[0] if entry_id else None}")

    step("2. From Python: the invoice and its entry in one transaction")
    invoice = uuid.uuid4()
    with conn.transaction():
        conn.execute("INSERT INTO demo_invoices VALUES (%s, 120.50)", (invoice,))
        audit.record(COMPANY, "CREATE_INVOICE", "invoice", invoice, {"amount": "120.50", "currency": "EUR"},
                     user_id=ALICE, franchise_id=FRANCHISE)
    print(f"   committed: invoice {invoice} and its CREATE_INVOICE entry")
    doomed = uuid.uuid4()
    with conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO demo_invoices VALUES (%s, 99)", (doomed,))
        audit.record(COMPANY, "CREATE_INVOICE", "invoice", doomed, {"amount": "99"}, user_id=ALICE)
    left = conn.execute("SELECT count(*) FROM audit.audit_logs WHERE entity_id = %s", (doomed,)).fetchone()
    print(f"   rolled back: invoice {doomed} and its entry are both gone ({left[0] if left else '?'} entries)")

    step("3. A batch in one round trip: AuditService.record_many()")
    ids = audit.record_many(
        AuditEntry(COMPANY, "APPROVE_INVOICE", "invoice", invoice, {"step": step}, ALICE, FRANCHISE)
        for step in ("manager", "finance", "director")
    )
    print(f"   -> {len(ids)} entries")

    step("4. Bad input is refused, and nothing is written")
    _show_refusal(conn, lambda: audit.record(COMPANY, "   ", "invoice", invoice))
    _show_refusal(conn, lambda: audit.record(COMPANY, "VOID_INVOICE", "invoice", invoice, ["not", "an", "object"]))  # type: ignore[arg-type]

    tampering = ("UPDATE audit.audit_logs SET details = '{}'", "DELETE FROM audit.audit_logs",
                 "TRUNCATE audit.audit_logs")
    if superuser:
        step(f"5. Changing the past is refused, even for {who}, a superuser")
    else:
        step(f"5. Changing the past is refused: {who}, the login that installed the log, owns none of it")
        for statement in tampering:
            _show_refusal(conn, partial(conn.execute, statement), statement)
        print("   ... and audit_owner, the role that owns the log, taken for this transaction, meets the triggers:")
        conn.execute("GRANT audit_owner TO CURRENT_USER")
        conn.execute("SET LOCAL ROLE audit_owner")
    for statement in tampering:
        _show_refusal(conn, partial(conn.execute, statement), statement)
    conn.execute("RESET ROLE")

    step("6. An application granted audit_writer may record, and do nothing else")
    try:
        with conn.transaction():
            conn.execute("SET LOCAL ROLE audit_writer")
            _show_refusal(conn, lambda: conn.execute("INSERT INTO audit.audit_logs (company_id, action, entity,"
                                                     " entity_id, details) VALUES (%s, 'X', 'x', %s, '{}')",
                                                     (COMPANY, COMPANY)), "INSERT INTO audit.audit_logs ...")
            select = "SELECT * FROM audit.audit_logs"
            _show_refusal(conn, partial(conn.execute, select), select)
            AuditService(conn).record(COMPANY, "EXPORT_REPORT", "report", uuid.uuid4(), user_id=ALICE)
            print("   audit.record_audit(...) as audit_writer: recorded")
            conn.execute("RESET ROLE")  # SET LOCAL lasts to the end of the whole transaction, not this savepoint
    except psycopg.errors.InsufficientPrivilege:
        print("   (skipped: this login may not SET ROLE audit_writer)")

    step("7. A tracked table: each change recorded with no application code, and who made it")
    # A temporary table: the demo leaves nothing in a database it was pointed at.
    conn.execute("CREATE TEMP TABLE invoices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                 " company_id uuid NOT NULL, amount numeric(12, 2) NOT NULL, card_number text)")
    conn.execute("SELECT audit.enable_tracking('pg_temp.invoices', exclude_columns => '{card_number}')")
    with audit.context(user_id=ALICE, request_id="req-7"):
        conn.execute("INSERT INTO invoices (company_id, amount, card_number) VALUES (%s, 100, '4111 1111 1111 1111')",
                     (COMPANY,))
        conn.execute("UPDATE invoices SET amount = 80")
        conn.execute("UPDATE invoices SET card_number = '5500 0000 0000 0004'")  # excluded: nothing to record
    # The demo's own entries only: a database it was pointed at may hold invoices of its own.
    tracked = conn.execute("SELECT action, details::text, context::text FROM audit.audit_logs"
                           " WHERE company_id = %s AND entity = 'invoice' AND context ->> 'request_id' = 'req-7'"
                           " ORDER BY action", (COMPANY,)).fetchall()
    print("   INSERT, then UPDATE amount, then UPDATE card_number (excluded), in"
          " audit.context(user_id=alice, request_id='req-7'):")
    for action, details, context in tracked:
        print(f"   -> {action}  details={details}  context={context}")
    _show_refusal(conn, lambda: conn.execute("TRUNCATE invoices"), "TRUNCATE invoices")

    if commit_each_step:  # sealing needs committed entries, and tampering a throwaway server
        _tamper_evidence(conn, step)

    step("The log")
    _print_log(conn.execute(LOG_QUERY, (COMPANY,)).fetchall())


def _tamper_evidence(conn: psycopg.Connection[tuple[object, ...]], step: Callable[[str], None]) -> None:
    step("8. Sealing: each company's entries join its hash chain")
    for company_id, block_no, entry_count in ledger.seal(conn):
        print(f"   sealed block {block_no} of company {str(company_id)[-4:]}: {entry_count} entries")
    print(f"   verify: {ledger.verify(conn, COMPANY).report}")

    step("9. A superuser tries to rewrite history")
    disable = "ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update"
    _show_refusal(conn, partial(conn.execute, disable), disable)
    print("   ... lifts that guard as a DBA would for a migration, disables the trigger, rewrites an entry,"
          " and re-enables it:")
    with conn.transaction():
        conn.execute("SELECT set_config('audit.allow_ddl', pg_current_xact_id()::text, true)")
        conn.execute(disable)
        conn.execute("UPDATE audit.audit_logs SET details = details || '{\"amount\": \"1.50\"}'"
                     " WHERE action = 'CREATE_INVOICE' AND details ? 'currency'")
        conn.execute("ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER audit_logs_refuse_update")
    print(f"   verify: {ledger.verify(conn, COMPANY).report}")


def _show_refusal(conn: psycopg.Connection[tuple[object, ...]], attempt: Callable[[], object], label: str = "") -> None:
    """Run an attempt in a savepoint and print how the database refused it."""
    try:
        with conn.transaction(), translate_errors():
            attempt()
    except (AuditError, psycopg.Error) as error:
        code = getattr(error, "sqlstate", None)
        prefix = f"{label}\n      " if label else ""
        print(f"   {prefix}refused [{code}] {type(error).__name__}: {str(error).splitlines()[0]}")
    else:
        raise AssertionError(f"not refused: {label or attempt}")


def _print_log(rows: list[tuple[Any, ...]]) -> None:
    header = ("created_at (UTC)", "company", "franchise", "user", "action", "entity", "entity_id", "details")
    table = [header] + [
        (
            created_at.astimezone(timezone.utc).strftime("%H:%M:%S.%f"),
            str(company_id)[-4:],
            str(franchise_id)[-4:] if franchise_id else "-",
            str(user_id)[-4:] if user_id else "-",
            action,
            entity,
            str(entity_id)[:8],
            details,
        )
        for created_at, company_id, franchise_id, user_id, action, entity, entity_id, details in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("   " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
