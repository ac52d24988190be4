"""Sealing into per-company hash chains, and two independent verifiers that catch a superuser's tampering."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest

from audit_py import AuditEntry, AuditService, canonical, ledger, surface
from audit_py.server import SUPERUSER

from .conftest import OWNER, OWNING_ROLE, READER, WRITER, ConnectAs
from .helpers import record

Verifier = Callable[[psycopg.Connection[tuple[object, ...]], uuid.UUID], tuple[bool, str, object, object]]
COMPANY, OTHER = uuid.uuid4(), uuid.uuid4()


def sql_verify(conn: psycopg.Connection[tuple[object, ...]], company: uuid.UUID) -> tuple[bool, str, object, object]:
    row = conn.execute("SELECT ok, report, block_no, entry_id FROM audit.verify(%s)", (company,)).fetchone()
    conn.commit()
    assert row is not None
    return row  # type: ignore[return-value]


def python_verify(conn: psycopg.Connection[tuple[object, ...]],
                  company: uuid.UUID) -> tuple[bool, str, object, object]:
    verdict = ledger.verify(conn, company)
    return verdict.ok, verdict.report, verdict.block_no, verdict.entry_id


VERIFIERS = pytest.mark.parametrize("verify", [sql_verify, python_verify], ids=["sql", "python"])


def as_superuser_without_triggers(connect_as: ConnectAs, *statements: str) -> None:
    """What a superuser can do: switch the protections off, tamper, and switch them back on."""
    conn = connect_as(SUPERUSER, autocommit=True)
    states = conn.execute("SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger"
                          " WHERE tgrelid IN ('audit.audit_logs'::regclass, 'audit.blocks'::regclass)"
                          " AND NOT tgisinternal").fetchall()
    for table in ("audit_logs", "blocks"):
        conn.execute(f"ALTER TABLE audit.{table} DISABLE TRIGGER USER")
    for statement in statements:
        conn.execute(statement)  # type: ignore[call-overload]
    for table, name, enabled in states:  # as they were: ENABLE ALWAYS, or (the stamp) ENABLE
        conn.execute(f"ALTER TABLE {table} ENABLE {'ALWAYS ' if enabled == 'A' else ''}TRIGGER {name}")


@pytest.fixture
def sealed_log(connect_as: ConnectAs) -> list[uuid.UUID]:
    """Two companies, three seals: COMPANY gets blocks 1 to 3 of 3 entries each; returns its entry ids."""
    writer, owner = connect_as(WRITER), connect_as(OWNER)
    ids = []
    for _ in range(3):
        for n in range(3):
            ids.append(record(writer, COMPANY, details=f'{{"n": {n}, "note": "é ✓", "amount": 12.50}}',
                              user_id=uuid.uuid4() if n else None, franchise_id=uuid.uuid4() if n == 2 else None))
        record(writer, OTHER)
        ledger.seal(owner)
    return ids


@VERIFIERS
def test_a_sealed_untouched_log_verifies(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                         verify: Verifier) -> None:
    ok, report, _, _ = verify(connect_as(READER), COMPANY)
    assert ok, report
    assert report == f"Company {COMPANY}: 3 blocks and 9 sealed entries verified; 0 entries not sealed yet;" \
                     " protections in place."


def test_seal_makes_one_block_per_company_and_nothing_twice(connect_as: ConnectAs) -> None:
    writer, owner = connect_as(WRITER), connect_as(OWNER)
    for company in (COMPANY, OTHER, COMPANY):
        record(writer, company)
    made = sorted(ledger.seal(owner), key=lambda block: block[2])
    assert made == sorted([(COMPANY, 1, 2), (OTHER, 1, 1)], key=lambda block: block[2])
    assert ledger.seal(owner) == []
    record(writer, COMPANY)
    assert ledger.seal(owner) == [(COMPANY, 2, 1)]


def test_python_and_sql_hash_the_same_bytes_whatever_the_session(connect_as: ConnectAs,
                                                                 sealed_log: list[uuid.UUID]) -> None:
    record(connect_as(WRITER), COMPANY, details='{"big": 12345678901234567890.123456789, "list": [1e3, null, true],'
                                               ' "nested": {"b": "\\u00e9", "a": ""}, "ascii": "x"}')
    writer = connect_as(WRITER)  # an entry with context, hashed in version 2 of the entry form
    writer.execute("""SELECT audit.set_context(extra => '{"request": "r-\\u00e9", "n": 1.50}')""")
    record(writer, COMPANY)
    conn = connect_as(SUPERUSER)
    conn.execute("SET TimeZone = 'Pacific/Chatham'; SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -3;"
                 " SET IntervalStyle = 'sql_standard'")
    rows = conn.cursor(binary=True).execute(
        "SELECT id, company_id, franchise_id, user_id, action, entity, entity_id, details::text, created_at, txid,"
        " context::text, origin, audit.entry_hash(e) FROM audit.audit_logs e").fetchall()
    assert len(rows) == 14 and all(row[11] is not None for row in rows), "each entry is hashed with its origin"
    assert [row[10] for row in rows if row[10] != "{}"] == ['{"n": 1.50, "request": "r-\u00e9"}']
    for row in rows:
        assert hashlib.sha256(canonical.entry_bytes(*row[:12])).digest() == row[12]  # type: ignore[arg-type]
    default = connect_as(SUPERUSER).execute("SELECT id, audit.entry_hash(e) FROM audit.audit_logs e").fetchall()
    assert dict(default) == {row[0]: row[12] for row in rows}
    conn.commit()
    assert ledger.verify(conn, COMPANY).ok, "the Python verifier under the same odd settings"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31])
def test_python_and_sql_build_the_same_merkle_tree(connect_as: ConnectAs, size: int) -> None:
    leaves = [hashlib.sha256(bytes([n])).digest() for n in range(size)]
    row = connect_as(SUPERUSER).execute("SELECT audit._merkle_root(%s::bytea[])", (leaves,)).fetchone()
    assert row is not None and row[0] == canonical.merkle_root(leaves)
    if size == 3:  # RFC 6962's tree for three leaves: (0, 1), then 2
        node = lambda a, b: hashlib.sha256(b"\x01" + a + b).digest()  # noqa: E731
        leaf = lambda d: hashlib.sha256(b"\x00" + d).digest()  # noqa: E731
        assert row[0] == node(node(leaf(leaves[0]), leaf(leaves[1])), leaf(leaves[2]))


@VERIFIERS
def test_an_open_transaction_across_seals_lands_in_a_later_block(connect_as: ConnectAs, verify: Verifier) -> None:
    writer, late, owner = connect_as(WRITER), connect_as(WRITER), connect_as(OWNER)
    record(writer, COMPANY)
    late_id = AuditService(late).record(COMPANY, "LATE", "invoice", uuid.uuid4())  # left open
    after_id = record(writer, COMPANY)  # began after `late`, committed before the seal
    first = ledger.seal(owner)
    assert first == [(COMPANY, 1, 1)], "only the entry of the transaction that ended before `late` began"
    assert ledger.seal(owner) == []
    late.commit()
    assert ledger.seal(owner) == [(COMPANY, 2, 2)]
    blocks = connect_as(READER).execute(
        "SELECT block_no, entry_ids FROM audit.blocks WHERE company_id = %s ORDER BY block_no", (COMPANY,)).fetchall()
    assert set(blocks[1][1]) == {late_id, after_id}
    ok, report, _, _ = verify(connect_as(READER), COMPANY)
    assert ok, report


@VERIFIERS
def test_a_rolled_back_write_leaves_nothing_that_looks_like_tampering(connect_as: ConnectAs,
                                                                      verify: Verifier) -> None:
    writer, doomed, owner = connect_as(WRITER), connect_as(WRITER), connect_as(OWNER)
    record(writer, COMPANY)
    AuditService(doomed).record(COMPANY, "DOOMED", "invoice", uuid.uuid4())
    record(writer, COMPANY)
    doomed.rollback()
    ledger.seal(owner)
    ok, report, _, _ = verify(connect_as(READER), COMPANY)
    assert ok and "2 sealed entries" in report, report


def test_concurrent_seals_neither_fork_nor_duplicate(connect_as: ConnectAs) -> None:
    sealers = [connect_as(OWNER) for _ in range(3)]
    writers = [connect_as(WRITER) for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_sealing(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        try:
            while not stop.is_set():
                ledger.seal(conn)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    def keep_writing(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        service = AuditService(conn)
        for n in range(60):
            service.record_many([AuditEntry(COMPANY if n % 2 else OTHER, "A", "e", uuid.uuid4())] * 2)
            conn.commit()

    threads = [threading.Thread(target=keep_sealing, args=(c,)) for c in sealers]
    for thread in threads:
        thread.start()
    for thread in [threading.Thread(target=keep_writing, args=(c,)) for c in writers]:
        thread.start()
        thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    ledger.seal(sealers[0])
    reader = connect_as(READER)
    for company in (COMPANY, OTHER):
        assert sql_verify(reader, company)[0] and python_verify(reader, company)[0]
    sealed = reader.execute("SELECT sum(cardinality(entry_ids)) FROM audit.blocks").fetchone()
    assert sealed == (360,)


# Tampering, as a superuser: each must be caught by both verifiers.

FIELD_CHANGES = {
    "details": "details = details || '{\"amount\": 0}'",
    "details key order only": "details = '{\"n\": 0, \"note\": \"é ✓\", \"amount\": 12.5}'",
    "action": "action = 'VOID_INVOICE'",
    "entity": "entity = 'receipt'",
    "entity_id": "entity_id = gen_random_uuid()",
    "user_id": "user_id = gen_random_uuid()",
    "franchise_id": "franchise_id = gen_random_uuid()",
    "created_at": "created_at = created_at - interval '1 microsecond'",
    "txid": "txid = txid + 1",
    "context": """context = '{"request_id": "forged"}'""",
}


@VERIFIERS
@pytest.mark.parametrize("change", FIELD_CHANGES.values(), ids=FIELD_CHANGES.keys())
def test_a_changed_field_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID], verify: Verifier,
                                   change: str) -> None:
    target = sealed_log[4]  # block 2
    as_superuser_without_triggers(connect_as, f"UPDATE audit.audit_logs SET {change} WHERE id = '{target}'")
    ok, report, block_no, entry_id = verify(connect_as(READER), COMPANY)
    assert not ok
    assert (block_no, entry_id) == (2, target)
    assert report == f"Block 2 of company {COMPANY}: entry {target} was changed after it was sealed."


@VERIFIERS
def test_a_deleted_entry_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID], verify: Verifier) -> None:
    target = sealed_log[7]
    as_superuser_without_triggers(connect_as, f"DELETE FROM audit.audit_logs WHERE id = '{target}'")
    ok, report, block_no, entry_id = verify(connect_as(READER), COMPANY)
    assert (ok, block_no, entry_id) == (False, 3, target)
    assert report.endswith("was sealed in this block and is missing; it was deleted.")


@VERIFIERS
def test_a_whole_block_of_deleted_entries_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                    verify: Verifier) -> None:
    ids = ", ".join(f"'{i}'" for i in sealed_log[3:6])
    as_superuser_without_triggers(connect_as, f"DELETE FROM audit.audit_logs WHERE id IN ({ids})")
    ok, report, block_no, _ = verify(connect_as(READER), COMPANY)
    assert (ok, block_no) == (False, 2) and "it was deleted" in report


@VERIFIERS
def test_an_entry_moved_to_another_company_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                     verify: Verifier) -> None:
    as_superuser_without_triggers(connect_as, f"UPDATE audit.audit_logs SET company_id = '{OTHER}'"
                                              f" WHERE id = '{sealed_log[0]}'")
    ok, report, block_no, entry_id = verify(connect_as(READER), COMPANY)
    assert (ok, block_no, entry_id) == (False, 1, sealed_log[0]) and "it was deleted" in report
    assert not verify(connect_as(READER), OTHER)[0]


@VERIFIERS
def test_a_forged_entry_in_a_sealed_range_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                    verify: Verifier) -> None:
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at, txid, origin)
        SELECT gen_random_uuid(), company_id, 'REFUND', 'invoice', entity_id, '{{}}', created_at, txid, origin
        FROM audit.audit_logs WHERE id = '{sealed_log[1]}'""")
    ok, report, block_no, _ = verify(connect_as(READER), COMPANY)
    assert (ok, block_no) == (False, 1)
    assert report.endswith("was not sealed in this block; it was inserted afterwards.")


@VERIFIERS
@pytest.mark.parametrize(("tampering", "block", "words"), [
    ("DELETE FROM audit.blocks WHERE company_id = '{c}' AND block_no = 2", 2, "block 2 is missing"),
    ("UPDATE audit.blocks SET block_no = -block_no WHERE company_id = '{c}' AND block_no IN (1, 3);"
     " UPDATE audit.blocks SET block_no = 4 + block_no WHERE company_id = '{c}' AND block_no < 0", 1,
     "does not follow"),
    ("UPDATE audit.blocks SET sealed_at = sealed_at + interval '1 second' WHERE company_id = '{c}' AND block_no = 2",
     2, "was rewritten"),
    ("UPDATE audit.blocks SET entry_hashes[1] = sha256('x') WHERE company_id = '{c}' AND block_no = 3", 3,
     "was rewritten"),
    ("UPDATE audit.blocks SET prev_hash = sha256('x') WHERE company_id = '{c}' AND block_no = 3", 3,
     "does not follow"),
])
def test_a_removed_reordered_or_rewritten_block_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                          verify: Verifier, tampering: str, block: int,
                                                          words: str) -> None:
    as_superuser_without_triggers(connect_as, tampering.format(c=COMPANY))
    ok, report, block_no, _ = verify(connect_as(READER), COMPANY)
    assert (ok, block_no) == (False, block) and words in report, report


@VERIFIERS
def test_a_removed_last_block_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                        verify: Verifier) -> None:
    as_superuser_without_triggers(connect_as, f"DELETE FROM audit.blocks WHERE company_id = '{COMPANY}'"
                                              " AND block_no = 3")
    ok, report, _, entry_id = verify(connect_as(READER), COMPANY)
    assert not ok and entry_id in sealed_log[6:] and "no block holds it" in report, report


@VERIFIERS
@pytest.mark.parametrize(("tampering", "changed", "detail"), [
    ("ALTER TABLE audit.audit_logs DISABLE TRIGGER audit_logs_refuse_update",
     "table audit.audit_logs was changed", "'trigger audit_logs_refuse_update enabled D: "),
    ("ALTER TABLE audit.blocks ENABLE TRIGGER blocks_refuse_delete",
     "table audit.blocks was changed", "'trigger blocks_refuse_delete enabled O: "),
    ("DROP TRIGGER audit_logs_stamp ON audit.audit_logs", "table audit.audit_logs was changed",
     "trigger audit_logs_stamp enabled O: CREATE TRIGGER"),
    # The stamp of the recording functions' entries: the columns' defaults, and their not naming them.
    ("ALTER TABLE audit.audit_logs ALTER COLUMN origin SET DEFAULT 42", "table audit.audit_logs was changed",
     "default 42"),
    ("GRANT INSERT (created_at) ON audit.audit_logs TO audit_definer", "table audit.audit_logs was changed",
     "created_at"),
    ("CREATE OR REPLACE FUNCTION audit._refuse_change() RETURNS trigger LANGUAGE plpgsql"
     " SET search_path = '' AS $$BEGIN RETURN NEW; END;$$", "function audit._refuse_change() was changed",
     "'settings search_path=\"\"'"),
    ("CREATE OR REPLACE FUNCTION audit.entry_hash(entry audit.audit_logs) RETURNS bytea LANGUAGE sql"
     " SET search_path = '' AS $$SELECT ''::bytea$$", "function audit.entry_hash(audit.audit_logs) was changed",
     "'body sha256 "),
    ("CREATE RULE swallow AS ON INSERT TO audit.audit_logs DO INSTEAD NOTHING",
     "table audit.audit_logs was changed", "'rule swallow enabled O: CREATE RULE swallow AS"),
    ("ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) RESET search_path",
     "function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid) was changed", "lacks 'settings search_path="),
    ("DROP TRIGGER audit_logs_refuse_truncate ON audit.audit_logs; CREATE TRIGGER audit_logs_refuse_truncate"
     " BEFORE TRUNCATE ON audit.audit_logs FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION audit._refuse_change()",
     "table audit.audit_logs was changed", "WHEN (false)"),
])
def test_weakened_protections_are_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID], verify: Verifier,
                                         tampering: str, changed: str, detail: str) -> None:
    """The SQL verifier names what changed; the Python one, how (it holds the fresh install in full)."""
    connect_as(SUPERUSER, autocommit=True).execute(tampering)  # type: ignore[call-overload]
    ok, report, _, _ = verify(connect_as(READER), COMPANY)
    assert not ok and report.startswith("The protections of the log were tampered with") and changed in report, report
    assert verify is sql_verify or detail in report, report


@VERIFIERS
@pytest.mark.parametrize(("role", "tampering", "undo", "detail"), [
    # A predefined role would give audit_definer the stamp's columns, past the column privileges.
    ("audit_definer", "GRANT pg_write_all_data TO audit_definer", "REVOKE pg_write_all_data FROM audit_definer",
     "member of pg_write_all_data"),
    # A view of the log owned by audit_owner, outside schema audit, inserts with the owner's rights: the
    # stamp trigger would not fire for audit_definer's inserts through it (the test database goes after).
    ("audit_owner", "CREATE SCHEMA door AUTHORIZATION audit_owner;"
                    " CREATE VIEW door.v AS SELECT * FROM audit.audit_logs; ALTER VIEW door.v OWNER TO audit_owner",
     None, "owns outside schema audit schema door, view door.v"),
])
def test_what_the_log_roles_hold_and_own_elsewhere_is_caught(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                              verify: Verifier, role: str, tampering: str,
                                                              undo: str | None, detail: str) -> None:
    superuser = connect_as(SUPERUSER, autocommit=True)
    superuser.execute(tampering)  # type: ignore[call-overload]
    try:
        ok, report, _, _ = verify(connect_as(READER), COMPANY)
    finally:
        if undo:
            superuser.execute(undo)  # type: ignore[call-overload]
    assert not ok and f"role {role} was changed" in report, report
    assert verify is sql_verify or detail in report, report


@VERIFIERS
def test_one_company_verifies_whatever_was_done_to_another(connect_as: ConnectAs, sealed_log: list[uuid.UUID],
                                                           verify: Verifier) -> None:
    as_superuser_without_triggers(connect_as, f"UPDATE audit.audit_logs SET action = 'X' WHERE company_id = '{OTHER}'")
    assert verify(connect_as(READER), COMPANY)[0]
    assert not verify(connect_as(READER), OTHER)[0]


def test_the_surface_is_that_of_a_fresh_install(connect_as: ConnectAs) -> None:
    """When a migration changes the surface, scripts/surface must record it for both verifiers."""
    conn = connect_as(READER)
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
        found = surface.read(conn)
    assert surface.judge(found).problems == []
    assert conn.execute("SELECT count(*) FROM audit._protection_problems()").fetchone() == (0,)
    conn.commit()
    assert sql_verify(conn, COMPANY)[0] is None, "no entries: nothing to verify, not an OK"
    functions = {row[0] for row in conn.execute(
        "SELECT 'function ' || oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'audit'::regnamespace")}
    relations = {row[0] for row in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'audit'::regnamespace")}
    assert functions <= set(found), "every function is in the surface"
    assert relations == {obj.rsplit(".", 1)[1] for obj in found
                         if obj.split(" ")[0] in ("table", "view", "index", "composite")}


def test_writers_cannot_seal_and_readers_may_verify(connect_as: ConnectAs) -> None:
    for role in (WRITER, READER):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connect_as(role).execute("SELECT audit.seal()")
    assert connect_as(READER).execute("SELECT audit.digest()->'chains'").fetchone() == ({},)


@pytest.mark.parametrize("role", [OWNING_ROLE, SUPERUSER])
@pytest.mark.parametrize("statement", ["UPDATE audit.blocks SET block_no = block_no + 1", "DELETE FROM audit.blocks",
                                       "TRUNCATE audit.blocks"])
def test_blocks_are_append_only(connect_as: ConnectAs, sealed_log: list[uuid.UUID], role: str,
                                statement: str) -> None:
    conn = connect_as(role)
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    assert refused.value.sqlstate == "AU001"
