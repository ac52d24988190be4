"""Verifiers that cannot be fooled: each tampering a superuser was seen to get past them, tried again.

Every case runs both verifiers, audit.verify() (SQL) and audit-py verify (Python), as the auditor's
login, with a second company left untouched that must still verify in the same run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from audit_py import ledger, surface
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER, READER, TENANT, WRITER, ConnectAs
from .helpers import record
from .test_cli import audit_py
from .test_tamper_evidence import as_superuser_without_triggers

COMPANY, OTHER = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def sealed(connect_as: ConnectAs) -> Iterator[list[uuid.UUID]]:
    """COMPANY and OTHER, two blocks each; COMPANY's entry ids."""
    writer, owner = connect_as(WRITER), connect_as(OWNER)
    ids = []
    for _ in range(2):
        ids += [record(writer, COMPANY, details='{"note": "é ✓ 東京"}'), record(writer, COMPANY)]
        record(writer, OTHER)
        ledger.seal(owner)
    yield ids


def sql_verdict(conn: psycopg.Connection[tuple[object, ...]], company: uuid.UUID) -> tuple[bool | None, str]:
    row = conn.execute("SELECT ok, report FROM audit.verify(%s)", (company,)).fetchone()
    conn.commit()
    assert row is not None
    return row  # type: ignore[return-value]


def python_run(connect_as: ConnectAs, **options: object) -> ledger.Run:
    return ledger.verify_all(connect_as(READER, **options))


def company_verdict(run: ledger.Run, company: uuid.UUID) -> ledger.Verdict:
    return next(v for v in run.verdicts if v.company_id == company)


def assert_protections_tampered(connect_as: ConnectAs, *words: str, chain_intact: bool = True) -> ledger.Run:
    """Both verifiers report the protections; OTHER's chain (and COMPANY's, if intact) still verifies."""
    ok, report = sql_verdict(connect_as(READER), COMPANY)
    assert ok is False and report.startswith("The protections of the log were tampered with"), report
    run = python_run(connect_as)
    protections = run.verdicts[0]
    assert protections.status == ledger.TAMPERED and all(w in protections.report for w in words), protections.report
    assert company_verdict(run, OTHER).ok and company_verdict(run, COMPANY).ok is chain_intact
    assert run.exit_code == 1
    return run


def assert_company_tampered(connect_as: ConnectAs, *words: str) -> None:
    """Both verifiers name COMPANY; OTHER verifies clean, in the same Python run."""
    ok, report = sql_verdict(connect_as(READER), COMPANY)
    assert ok is False and all(w in report for w in words), report
    assert sql_verdict(connect_as(READER), OTHER)[0] is True
    run = python_run(connect_as)
    assert run.verdicts[0].ok, run.verdicts[0].report
    verdict = company_verdict(run, COMPANY)
    assert verdict.status == ledger.TAMPERED and all(w in verdict.report for w in words), verdict.report
    assert company_verdict(run, OTHER).ok and run.exit_code == 1


def superuser(connect_as: ConnectAs, *statements: str) -> None:
    conn = connect_as(SUPERUSER, autocommit=True)
    for statement in statements:
        conn.execute(statement)  # type: ignore[call-overload]


# The rows of the table: every row counts once.

def test_a_second_row_with_a_sealed_entry_id_after_the_primary_key_was_dropped(
        connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    superuser(connect_as, "ALTER TABLE audit.audit_logs DROP CONSTRAINT audit_logs_pkey")
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at, txid)
        SELECT id, company_id, 'REFUND', entity, entity_id, details, created_at, txid
        FROM audit.audit_logs WHERE id = '{sealed[0]}'""")
    run = assert_protections_tampered(connect_as, "index audit.audit_logs_pkey is missing", chain_intact=False)
    assert f"share the id {sealed[0]}" in company_verdict(run, COMPANY).report


def test_a_duplicate_id_slipped_past_a_primary_key_left_in_place(connect_as: ConnectAs,
                                                                  sealed: list[uuid.UUID]) -> None:
    """The catalog flipped and back: the surface is as installed, the duplicate row stays."""
    flip = "UPDATE pg_index SET indisunique = %s WHERE indexrelid = 'audit.audit_logs_pkey'::regclass"
    superuser(connect_as, flip % "false")
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (id, company_id, action, entity, entity_id, details, created_at, txid)
        SELECT id, company_id, 'REFUND', entity, entity_id, details, created_at, pg_current_xact_id()::text::bigint
        FROM audit.audit_logs WHERE id = '{sealed[1]}'""")
    superuser(connect_as, flip % "true")
    assert_company_tampered(connect_as, f"share the id {sealed[1]}")


@pytest.mark.parametrize(("column", "value"), [("created_at", "'infinity'"), ("created_at", "'-infinity'"),
                                               ("action", "NULL"), ("details", "NULL")])
def test_a_value_no_entry_can_hold(connect_as: ConnectAs, sealed: list[uuid.UUID], column: str, value: str,
                                   pg_server: ThrowawayServer,
                                   postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    """infinity crashed the Python verifier, and the other companies went unverified."""
    flip = ("UPDATE pg_attribute SET attnotnull = %s"
            f" WHERE attrelid = 'audit.audit_logs'::regclass AND attname = '{column}'")
    superuser(connect_as, flip % "false")
    as_superuser_without_triggers(connect_as,
                                  f"UPDATE audit.audit_logs SET {column} = {value} WHERE id = '{sealed[2]}'")
    superuser(connect_as, flip % "true")
    assert_company_tampered(connect_as, f"entry {sealed[2]} holds a value no recorded entry can hold")
    result = audit_py("verify", "--dsn", pg_server.conninfo_for(postgresql.info.dbname, user=READER))
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout.count("OK ") == 2


def test_a_restrictive_policy_hiding_a_forged_entry_from_the_auditor(connect_as: ConnectAs,
                                                                      sealed: list[uuid.UUID]) -> None:
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, created_at, txid)
        VALUES ('{COMPANY}', 'FORGED', 'invoice', gen_random_uuid(), '{{}}', now(), 1)""")
    superuser(connect_as, "CREATE POLICY hide ON audit.audit_logs AS RESTRICTIVE FOR SELECT TO audit_reader"
                          " USING (action <> 'FORGED')")
    assert_protections_tampered(connect_as, "table audit.audit_logs was changed", "policy hide restrictive")


def test_a_database_search_path_over_a_snapshot_of_pg_proc(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                                           postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    superuser(connect_as, "CREATE SCHEMA other", "CREATE TABLE other.pg_proc AS SELECT * FROM pg_catalog.pg_proc",
              "GRANT USAGE ON SCHEMA other TO PUBLIC", "GRANT SELECT ON other.pg_proc TO PUBLIC",
              "CREATE OR REPLACE FUNCTION audit.record_audit(company_id uuid, action text, entity text, entity_id uuid,"
              " details jsonb DEFAULT '{}', user_id uuid DEFAULT NULL, franchise_id uuid DEFAULT NULL) RETURNS uuid"
              " LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$SELECT NULL::uuid$$",
              f"ALTER DATABASE {postgresql.info.dbname} SET search_path = other, pg_catalog")
    run = assert_protections_tampered(connect_as, "function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)"
                                                  " was changed", "'body sha256")
    assert len(run.verdicts) == 3


@pytest.mark.parametrize("setting", ["search_path=audit,public", "search_path=public", "DateStyle=SQL,DMY",
                                     "TimeZone=Pacific/Chatham", "extra_float_digits=-15", "bytea_output=escape"])
def test_a_clean_log_verifies_whatever_the_session_settings(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                                            setting: str) -> None:
    run = python_run(connect_as, options=f"-c {setting}")
    assert run.exit_code == 0 and all(v.ok for v in run.verdicts), [v.report for v in run.verdicts]
    conn = connect_as(READER, options=f"-c {setting}")
    assert sql_verdict(conn, COMPANY)[0] is True


def test_a_clean_log_verifies_in_any_client_encoding(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                                     pg_server: ThrowawayServer,
                                                     postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    dsn = pg_server.conninfo_for(postgresql.info.dbname, user=READER)
    result = audit_py("verify", "--dsn", dsn, env={"PGCLIENTENCODING": "LATIN1"})
    assert result.returncode == 0 and result.stdout.count("OK ") == 3, result.stdout + result.stderr
    run = python_run(connect_as, client_encoding="LATIN1")
    assert run.exit_code == 0


@pytest.mark.parametrize(("tampering", "words"), [
    (["UPDATE pg_class SET relhastriggers = false WHERE oid = 'audit.audit_logs'::regclass"],
     ["table audit.audit_logs was changed", "'has triggers false, has rules false'"]),
    (["CREATE FUNCTION public.drop_some() RETURNS trigger LANGUAGE plpgsql AS"
      " $$BEGIN IF NEW.action = 'VOID' THEN RETURN NULL; END IF; RETURN NEW; END$$",
      "CREATE TRIGGER aaa_drop_some BEFORE INSERT ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION public.drop_some()",
      "ALTER TABLE audit.audit_logs ENABLE ALWAYS TRIGGER aaa_drop_some"],
     ["table audit.audit_logs was changed", "'trigger aaa_drop_some enabled A: "]),
    (["ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) STRICT"],
     ["function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid) was changed", "strict true"]),
    (["CREATE OR REPLACE FUNCTION audit.record_audit(company_id uuid, action text, entity text, entity_id uuid,"
      " details jsonb DEFAULT '{}', user_id uuid DEFAULT '00000000-0000-0000-0000-00000000b0b0',"
      " franchise_id uuid DEFAULT NULL) RETURNS uuid LANGUAGE sql AS $$SELECT NULL::uuid$$"],
     ["function audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid) was changed", "b0b0"]),
    (["CREATE FUNCTION audit.record_audit(company_id text, action text, entity text, entity_id uuid,"
      " details jsonb DEFAULT '{}', user_id uuid DEFAULT NULL, franchise_id uuid DEFAULT NULL) RETURNS uuid"
      " LANGUAGE sql AS $$SELECT NULL::uuid$$"],
     ["function audit.record_audit(text,text,text,uuid,jsonb,uuid,uuid) was added"]),
    (["ALTER TABLE audit.blocks ALTER COLUMN format SET DEFAULT 2"],
     ["table audit.blocks was changed", "default 2"]),
    (["CREATE TABLE public.more_logs () INHERITS (audit.audit_logs)"],
     ["table audit.audit_logs was changed", "inherited by public.more_logs"]),
    (["ALTER TABLE audit.audit_logs ALTER COLUMN txid TYPE numeric"], ["txid numeric"]),
    (["GRANT UPDATE ON audit.blocks TO audit_writer"], ["audit_writer=UPDATE"]),
    (["ALTER FUNCTION audit.digest() OWNER TO " + SUPERUSER], ["function audit.digest() was changed", "a superuser"]),
    (["CREATE FUNCTION audit.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'"], ["function audit.helper() was added"]),
])
def test_a_weakened_surface(connect_as: ConnectAs, sealed: list[uuid.UUID], tampering: list[str],
                            words: list[str]) -> None:
    superuser(connect_as, *tampering)
    assert_protections_tampered(connect_as, *words)


def test_a_login_holding_the_function_role(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    superuser(connect_as, f"GRANT audit_definer TO {WRITER}")
    try:
        assert_protections_tampered(connect_as, "role audit_definer was changed", f"held by {WRITER}")
    finally:
        superuser(connect_as, f"REVOKE audit_definer FROM {WRITER}")  # roles outlive the test's database


def test_a_verify_replaced_by_one_that_always_says_ok(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    superuser(connect_as, "CREATE OR REPLACE FUNCTION audit.verify(company_id uuid) RETURNS TABLE (ok boolean,"
                          " report text, block_no bigint, entry_id uuid) LANGUAGE sql SECURITY DEFINER"
                          " SET search_path = pg_catalog, pg_temp"
                          " AS $$SELECT true, 'all fine', NULL::int8, NULL::uuid$$")
    as_superuser_without_triggers(connect_as, f"UPDATE audit.audit_logs SET action = 'X' WHERE id = '{sealed[0]}'")
    assert sql_verdict(connect_as(READER), COMPANY) == (True, "all fine")  # it lies: only an outside verifier can tell
    run = python_run(connect_as)
    assert "function audit.verify(uuid) was changed" in run.verdicts[0].report
    assert company_verdict(run, COMPANY).status == ledger.TAMPERED and company_verdict(run, OTHER).ok


def test_a_digest_function_that_leaves_a_company_out(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                                     pg_server: ThrowawayServer,
                                                     postgresql: psycopg.Connection[tuple[object, ...]],
                                                     tmp_path: Path) -> None:
    reader = pg_server.conninfo_for(postgresql.info.dbname, user=READER)
    audit_py("keygen", "--out", str(tmp_path / "key"))
    taken = audit_py("digest", "--dsn", reader, "--key", str(tmp_path / "key"), "--out", str(tmp_path / "d.json"))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    held = json.loads((tmp_path / "d.json").read_text())["digest"]
    assert set(held["chains"]) == {str(COMPANY), str(OTHER)} and held["guard"] is False
    # Built from the verified chains, never from this function's word: with it replaced, no digest at all.
    superuser(connect_as, "CREATE OR REPLACE FUNCTION audit.digest() RETURNS jsonb LANGUAGE sql SECURITY DEFINER"
                          " SET search_path = pg_catalog, pg_temp"
                          " AS $$SELECT '{\"format\": 1, \"chains\": {}}'::jsonb$$")
    refused = audit_py("digest", "--dsn", reader, "--key", str(tmp_path / "key"), "--out", str(tmp_path / "e.json"))
    assert refused.returncode == 1 and "not taken" in refused.stderr and not (tmp_path / "e.json").exists()
    # The company's chain rewritten, consistently: every chain thrown away and sealed anew.
    as_superuser_without_triggers(connect_as, f"UPDATE audit.audit_logs SET action = 'X' WHERE id = '{sealed[0]}'",
                                  "DELETE FROM audit.blocks")
    superuser(connect_as, "SELECT audit.seal()")
    result = audit_py("verify", "--dsn", reader, "--digest", str(tmp_path / "d.json"),
                      "--public-key", str(tmp_path / "key.pub"))
    assert result.returncode == 1, result.stdout
    assert f"TAMPERED   Company {COMPANY}: the digest of" in result.stdout
    assert f"TAMPERED   Company {OTHER}: the digest of" in result.stdout


@pytest.mark.parametrize("form", [1, 3])
def test_a_changed_block_format(connect_as: ConnectAs, sealed: list[uuid.UUID], form: int) -> None:
    as_superuser_without_triggers(connect_as, f"UPDATE audit.blocks SET format = {form}"
                                              f" WHERE company_id = '{COMPANY}' AND block_no = 2")
    assert_company_tampered(connect_as, f"block 2 claims canonical form {form}")


def test_a_null_block_hash_does_not_pass_for_unknown(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    flip = ("UPDATE pg_attribute SET attnotnull = %s WHERE attrelid = 'audit.blocks'::regclass"
            " AND attname IN ('prev_hash', 'block_hash')")
    superuser(connect_as, flip % "false")
    as_superuser_without_triggers(connect_as, "UPDATE audit.blocks SET prev_hash = NULL, block_hash = NULL"
                                              f" WHERE company_id = '{COMPANY}'")
    superuser(connect_as, flip % "true")
    assert_company_tampered(connect_as, "block 1 holds values audit.seal() never writes")


def test_a_tenant_reader_cannot_verify(connect_as: ConnectAs, sealed: list[uuid.UUID], pg_server: ThrowawayServer,
                                       postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    connect_as(OWNER, autocommit=True).execute(f"SELECT audit.pin_tenant('{TENANT}', %s)", (COMPANY,))
    result = audit_py("verify", "--dsn", pg_server.conninfo_for(postgresql.info.dbname, user=TENANT),
                      "--company", str(COMPANY))
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith(f"UNVERIFIED Login {TENANT} is not an audit_reader")


def test_a_company_with_nothing_is_not_an_ok(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                             pg_server: ThrowawayServer,
                                             postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    nobody = uuid.uuid4()
    assert sql_verdict(connect_as(READER), nobody) == (None, f"Company {nobody} has no entries and no blocks:"
                                                             " nothing to verify.")
    result = audit_py("verify", "--dsn", pg_server.conninfo_for(postgresql.info.dbname, user=READER),
                      "--company", str(nobody))
    assert result.returncode == 2 and f"UNVERIFIED Company {nobody} has no entries" in result.stdout


# Exit codes alerting can use.

def test_could_not_verify_is_2_in_one_line(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    down = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"
    unmigrated = pg_server.conninfo_for(empty_database(), user=OWNER)
    for dsn, words in [(down, "could not verify"), (unmigrated, "no audit log in this database")]:
        result = audit_py("verify", "--dsn", dsn)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and words in result.stdout + result.stderr


def test_a_log_of_another_version_cannot_be_verified(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    superuser(connect_as, "CREATE OR REPLACE FUNCTION audit.schema_version() RETURNS integer LANGUAGE sql IMMUTABLE"
                          " SET search_path = pg_catalog, pg_temp AS $$SELECT 99$$")
    run = python_run(connect_as)
    ours = json.loads((Path(surface.__file__).parent / "surface.json").read_text())["version"]
    assert run.exit_code == 2 and f"version 99; this audit-py verifies version {ours}" in run.verdicts[0].report


def test_a_dropped_table_is_a_verdict_not_a_crash(connect_as: ConnectAs, sealed: list[uuid.UUID],
                                                  pg_server: ThrowawayServer,
                                                  postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    superuser(connect_as, "DROP TABLE audit.blocks CASCADE")
    result = audit_py("verify", "--dsn", pg_server.conninfo_for(postgresql.info.dbname, user=SUPERUSER))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "table audit.blocks is missing" in result.stdout


# Offline: an export and its chain file.

def _export(pg_server: ThrowawayServer, dbname: str, out: Path, *extra: str) -> None:
    result = audit_py("export", "--dsn", pg_server.conninfo_for(dbname, user=READER), "--company", str(COMPANY),
                      "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def exported(sealed: list[uuid.UUID], pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]],
             tmp_path: Path) -> Path:
    dbname = postgresql.info.dbname
    _export(pg_server, dbname, tmp_path / "log.jsonl")
    audit_py("keygen", "--out", str(tmp_path / "key"))
    taken = audit_py("digest", "--dsn", pg_server.conninfo_for(dbname, user=READER), "--key", str(tmp_path / "key"),
                     "--out", str(tmp_path / "digest.json"))
    assert taken.returncode == 0, taken.stderr
    return tmp_path / "log.jsonl"


def _verify_offline(export: Path, *extra: str) -> tuple[int, str]:
    result = audit_py("verify", "--export", str(export), *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout + result.stderr


def _with_digest(export: Path) -> list[str]:
    return ["--digest", str(export.with_name("digest.json")), "--public-key", str(export.with_name("key.pub"))]


def test_an_intact_export_is_authenticated_only_by_a_digest(exported: Path) -> None:
    code, out = _verify_offline(exported)
    assert code == 2 and "The chain file is unauthenticated" in out and "OK         Company" in out
    code, out = _verify_offline(exported, *_with_digest(exported))
    assert code == 0 and "signed by the trusted key" in out and "the chain file holds it" in out, out
    code, out = _verify_offline(exported, "--digest", str(exported.with_name("digest.json")))
    assert code == 0 and "proves nothing" in out


def test_a_chain_file_recomputed_after_editing_an_entry(exported: Path) -> None:
    """Consistent in itself, as this very code can make it: only the digest tells."""
    from audit_py import canonical, offline

    lines = exported.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["action"] = "NOTHING_HAPPENED"
    lines[0] = json.dumps(entry, ensure_ascii=False)
    exported.write_text("\n".join(lines) + "\n")
    chain = json.loads(offline.chain_path(exported).read_text())
    prev = bytes(32)
    for block in chain["blocks"]:
        hashes = []
        for entry_id, entry_hash in zip(block["entry_ids"], block["entry_hashes"], strict=True):
            match = [offline._hash(canonical.parse_json(line)) for line in lines if json.loads(line)["id"] == entry_id]
            hashes.append(match[0].hex() if match else entry_hash)
        block["entry_hashes"], block["prev_hash"] = hashes, prev.hex()
        block["merkle_root"] = canonical.merkle_root([bytes.fromhex(h) for h in hashes]).hex()
        block["block_hash"] = canonical.block_hash(
            uuid.UUID(chain["company_id"]), block["block_no"], block["xid_from"], block["xid_to"], len(hashes),
            bytes.fromhex(block["merkle_root"]), prev, offline._micros(block["sealed_at"]), block["format"],
            block["origin"]).hex()
        prev = bytes.fromhex(block["block_hash"])
    offline.chain_path(exported).write_text(json.dumps(chain))
    code, out = _verify_offline(exported)
    assert code == 2 and "unauthenticated" in out
    code, out = _verify_offline(exported, *_with_digest(exported))
    assert code == 1 and "with another hash: the chain file was rewritten" in out, out


def test_a_duplicated_line(exported: Path) -> None:
    lines = exported.read_text().splitlines()
    exported.write_text("\n".join(lines + lines[1:2]) + "\n")
    code, out = _verify_offline(exported, *_with_digest(exported))
    assert code == 1 and "appears twice in the export" in out


def test_a_partial_export_with_an_entry_moved_past_the_chain(exported: Path, pg_server: ThrowawayServer,
                                                            postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    partial = exported.with_name("partial.jsonl")
    _export(pg_server, postgresql.info.dbname, partial, "--since", "2000-01-01T00:00:00+00:00")
    lines = partial.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["txid"], entry["action"] = 10**12, "NOTHING_HAPPENED"
    partial.write_text("\n".join([json.dumps(entry, ensure_ascii=False)] + lines[1:]) + "\n")
    code, out = _verify_offline(partial, *_with_digest(exported))
    assert code == 1 and f"entry {entry['id']} differs from the one sealed in block" in out, out


def test_a_digest_signed_by_another_key_offline(exported: Path) -> None:
    audit_py("keygen", "--out", str(exported.with_name("mallory")))
    code, out = _verify_offline(exported, "--digest", str(exported.with_name("digest.json")),
                                "--public-key", str(exported.with_name("mallory.pub")))
    assert code == 2 and "signed by another key than the one given" in out


# Found by attacking the verifiers themselves.

def test_a_cast_that_shows_an_edited_detail_as_the_sealed_one(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    """`details::text` would call it, in SQL and in an export: the Python verifier reads jsonb's own form."""
    as_superuser_without_triggers(connect_as, f"""UPDATE audit.audit_logs SET details = '{{"x": 1000000}}'
                                                  WHERE id = '{sealed[1]}'""")
    superuser(connect_as, "CREATE FUNCTION public.jt(j jsonb) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS"
                          " $$SELECT CASE WHEN j = '{\"x\": 1000000}'::jsonb THEN '{\"amount\": 10}'"
                          " ELSE textin(jsonb_out(j)) END$$",
              "CREATE CAST (jsonb AS text) WITH FUNCTION public.jt(jsonb)")
    run = assert_protections_tampered(connect_as, "cast jsonb as text was added", chain_intact=False)
    assert f"entry {sealed[1]} was changed after it was sealed" in company_verdict(run, COMPANY).report


def test_a_time_beyond_the_canonical_form_and_a_future_transaction(connect_as: ConnectAs,
                                                                   sealed: list[uuid.UUID]) -> None:
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, created_at, txid)
        VALUES ('{COMPANY}', 'FORGED', 'invoice', gen_random_uuid(), '{{}}', '294276-12-31 23:59:59+00', 3)""")
    assert_company_tampered(connect_as, "holds a value no recorded entry can hold")


def test_an_entry_with_a_transaction_id_not_given_out_yet(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    """It would stay "not sealed yet" for ever, passing every verification."""
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, created_at, txid, origin)
        VALUES ('{COMPANY}', 'APPROVE_PAYMENT', 'invoice', gen_random_uuid(), '{{}}', '2020-01-01',
                4611686018427387904, (SELECT system_identifier FROM pg_control_system()))""")
    ok, report = sql_verdict(connect_as(READER), COMPANY)
    assert ok is False and "not given out yet" in report, report
    verdict = company_verdict(python_run(connect_as), COMPANY)
    assert verdict.status == ledger.TAMPERED and "not given out yet" in verdict.report, verdict.report


def test_an_owner_that_is_no_role_is_a_verdict(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    superuser(connect_as, "UPDATE pg_namespace SET nspowner = 4242424 WHERE nspname = 'audit'")
    try:
        assert_protections_tampered(connect_as, "schema audit was changed", "owner no role 4242424")
    finally:
        superuser(connect_as, "UPDATE pg_namespace SET nspowner = 'audit_owner'::regrole WHERE nspname = 'audit'")


def test_an_auditor_is_told_who_could_take_the_log(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    report = python_run(connect_as).verdicts[0].report
    assert report.endswith(f"Can take the log's owning roles: superusers, {OWNER} (CREATEROLE, PostgreSQL 15).") \
        or f"{OWNER} (admin option on audit_owner)" in report, report


def test_a_partial_export_cannot_prove_nothing_was_removed(exported: Path, pg_server: ThrowawayServer,
                                                           postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    partial = exported.with_name("partial.jsonl")
    _export(pg_server, postgresql.info.dbname, partial, "--since", "2000-01-01T00:00:00+00:00")
    partial.write_text("".join(partial.read_text().splitlines(keepends=True)[1:]))
    code, out = _verify_offline(partial, *_with_digest(exported))
    assert code == 2 and "cannot show that no entry was removed" in out, out


@pytest.mark.parametrize(("field", "value"), [("since", "1970-01-01T00:00:00"), ("sealed_at", 2**70),
                                              ("xid_to", 2**64)])
def test_an_edited_chain_file_is_a_verdict_not_a_crash(exported: Path, field: str, value: object) -> None:
    from audit_py import offline

    chain = json.loads(offline.chain_path(exported).read_text())
    if field == "since":
        chain["since"] = value
    else:
        chain["blocks"][0][field] = value
    offline.chain_path(exported).write_text(json.dumps(chain))
    code, out = _verify_offline(exported, *_with_digest(exported))
    assert code == 1 and "TAMPERED" in out, out


def test_a_row_kept_out_of_the_indexes(connect_as: ConnectAs, sealed: list[uuid.UUID]) -> None:
    """Every index scan misses it, the verifiers' too: a scan of the table itself does not."""
    flip = ("UPDATE pg_index SET indisready = %s WHERE indrelid = 'audit.audit_logs'::regclass"
            " AND indexrelid <> 'audit.audit_logs_pkey'::regclass")
    superuser(connect_as, flip % "false")
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, created_at, txid)
        VALUES ('{COMPANY}', 'FORGED', 'invoice', gen_random_uuid(), '{{}}', now(), 3)""")
    superuser(connect_as, flip % "true")
    run = python_run(connect_as)
    verdict = company_verdict(run, COMPANY)
    assert verdict.status == ledger.TAMPERED and "rows were kept out of the indexes" in verdict.report, verdict.report
    assert company_verdict(run, OTHER).ok and run.exit_code == 1


# Found by a second attack.

def test_planner_settings_cannot_hide_a_row_kept_out_of_the_indexes(
        connect_as: ConnectAs, sealed: list[uuid.UUID], postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    flip = "UPDATE pg_index SET indisready = %s WHERE indrelid = 'audit.audit_logs'::regclass"
    superuser(connect_as, flip % "false")
    as_superuser_without_triggers(connect_as, f"""
        INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details, created_at, txid, origin)
        SELECT company_id, 'FORGED', entity, entity_id, details, created_at, txid, origin
        FROM audit.audit_logs WHERE id = '{sealed[0]}'""")
    superuser(connect_as, flip % "true",
              f"ALTER DATABASE {postgresql.info.dbname} SET enable_seqscan = off",
              f"ALTER DATABASE {postgresql.info.dbname} SET seq_page_cost = 1e6")
    assert_company_tampered(connect_as, "rows were kept out of the indexes")


def test_settings_that_change_how_definitions_print_change_no_verdict(
        connect_as: ConnectAs, sealed: list[uuid.UUID], postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    """quote_all_identifiers reprints every name; standard_conforming_strings=off rereads bytea literals."""
    superuser(connect_as, f"ALTER DATABASE {postgresql.info.dbname} SET quote_all_identifiers = on",
              f"ALTER DATABASE {postgresql.info.dbname} SET standard_conforming_strings = off")
    record(connect_as(WRITER), COMPANY)
    assert len(ledger.seal(connect_as(OWNER))) == 1
    assert sql_verdict(connect_as(READER), COMPANY)[0] is True
    run = python_run(connect_as)
    assert run.exit_code == 0, [v.report for v in run.verdicts]


def test_an_export_line_with_a_key_twice(exported: Path) -> None:
    """A reader keeping the first value would read another entry than the one hashed."""
    lines = exported.read_text().splitlines()
    lines[0] = '{"action": "DELETE_EVERYTHING", ' + lines[0][1:]
    exported.write_text("\n".join(lines) + "\n")
    code, out = _verify_offline(exported, *_with_digest(exported))
    assert code == 1 and "a key twice in one object: 'action'" in out, out


def test_an_export_nested_too_deep_to_read_is_not_a_crash(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                                          postgresql: psycopg.Connection[tuple[object, ...]],
                                                          tmp_path: Path) -> None:
    record(connect_as(WRITER), COMPANY, details='{"a": ' * 3000 + "1" + "}" * 3000)
    ledger.seal(connect_as(OWNER))
    assert python_run(connect_as).exit_code == 0, "online, the verifier hashes the bytes: no parsing"
    _export(pg_server, postgresql.info.dbname, tmp_path / "deep.jsonl")
    code, out = _verify_offline(tmp_path / "deep.jsonl")
    assert code == 2 and "nests deeper than this verifier can read" in out, out


@pytest.mark.parametrize("tampering", [
    "GRANT USAGE ON TYPE audit.page_entry TO audit_writer WITH GRANT OPTION",
    "ALTER TYPE audit.page_entry ALTER ATTRIBUTE action TYPE text COLLATE \"C\"",
    "ALTER TABLE audit.audit_logs ALTER COLUMN entity TYPE text COLLATE \"C\""],
    ids=["a type's privilege", "a type attribute's collation", "a column's collation"])
def test_a_type_privilege_or_a_collation_changed_is_seen_by_both(connect_as: ConnectAs, tampering: str) -> None:
    superuser(connect_as, f"SET ROLE audit_owner; {tampering}")
    reader = connect_as(READER, autocommit=True)
    in_sql = [row[0] for row in reader.execute("SELECT * FROM audit.protection_problems()").fetchall()]
    assert in_sql, "audit.protection_problems() saw nothing"
    run = python_run(connect_as)
    assert run.exit_code == 1 and not run.verdicts[0].ok, run.verdicts[0].report
