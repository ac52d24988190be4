"""Digests kept outside the database catch even a consistent rewrite of a whole chain."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit_py import digest, ledger
from audit_py.server import SUPERUSER

from .conftest import OWNER, READER, WRITER, ConnectAs
from .helpers import record
from .test_tamper_evidence import as_superuser_without_triggers

COMPANY, OTHER = uuid.uuid4(), uuid.uuid4()


def take(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, Any]:
    return ledger.take_digest(conn, ledger.verify_all(conn))


@pytest.fixture
def chains(connect_as: ConnectAs) -> uuid.UUID:
    writer, owner = connect_as(WRITER), connect_as(OWNER)
    for _ in range(2):
        target = record(writer, COMPANY)
        record(writer, OTHER)
        ledger.seal(owner)
    return target


def test_digest_holds_the_head_of_each_chain(connect_as: ConnectAs, chains: uuid.UUID) -> None:
    taken = take(connect_as(READER))
    assert taken["format"] == 1 and set(taken["chains"]) == {str(COMPANY), str(OTHER)}
    head = taken["chains"][str(COMPANY)]
    row = connect_as(READER).execute("SELECT block_no, encode(block_hash, 'hex'), xid_to FROM audit.blocks"
                                     " WHERE company_id = %s ORDER BY block_no DESC LIMIT 1", (COMPANY,)).fetchone()
    assert row == (head["block_no"], head["block_hash"], head["xid_to"])


def test_a_consistent_rewrite_of_a_whole_chain_passes_verify_but_not_the_digest(
        connect_as: ConnectAs, chains: uuid.UUID) -> None:
    reader = connect_as(READER)
    before = take(reader)
    # The superuser changes an entry, throws every chain away and seals anew: consistent in itself.
    # (Throwing away one company's chain alone leaves its entries below the others' horizon: verify
    # catches that, see test_tamper_evidence.)
    as_superuser_without_triggers(
        connect_as, f"UPDATE audit.audit_logs SET action = 'NOTHING_HAPPENED' WHERE id = '{chains}'",
        "DELETE FROM audit.blocks")
    connect_as(SUPERUSER, autocommit=True).execute("SELECT audit.seal()")
    for company in (COMPANY, OTHER):
        assert ledger.verify(reader, company).ok
        assert reader.execute("SELECT ok FROM audit.verify(%s)", (company,)).fetchone() == (True,)
        reader.commit()
    verdicts = ledger.check_digest(ledger.verify_all(reader), before)
    assert [v.ok for v in verdicts] == [False, False]
    assert all("the chain was cut or rewritten since" in v.report for v in verdicts)


def test_a_chain_that_grew_still_extends_the_digest(connect_as: ConnectAs, chains: uuid.UUID) -> None:
    reader = connect_as(READER)
    before = take(reader)
    record(connect_as(WRITER), COMPANY)
    ledger.seal(connect_as(OWNER))
    assert all(v.ok for v in ledger.check_digest(ledger.verify_all(reader), before))


def test_signed_digest_round_trip_and_tampered_file(connect_as: ConnectAs, chains: uuid.UUID, tmp_path: Path) -> None:
    public = digest.generate_key(tmp_path / "key")
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    signed = digest.document(take(connect_as(READER)), digest.load_private_key(tmp_path / "key"))
    path = tmp_path / "digest.json"
    path.write_text(json.dumps(signed))
    held, trust = digest.read(path, digest.load_public_key(public))
    assert held == signed["digest"] and trust == "signed by the trusted key"

    signed["digest"]["chains"][str(COMPANY)]["block_no"] = 1
    path.write_text(json.dumps(signed))
    with pytest.raises(digest.DigestError, match="the file was altered"):
        digest.read(path, digest.load_public_key(public))


def test_a_digest_signed_by_another_key_is_refused(connect_as: ConnectAs, chains: uuid.UUID, tmp_path: Path) -> None:
    digest.generate_key(tmp_path / "ours")
    mallory = tmp_path / "mallory"
    digest.generate_key(mallory)
    path = tmp_path / "digest.json"
    path.write_text(json.dumps(digest.document(take(connect_as(READER)), digest.load_private_key(mallory))))
    assert digest.read(path)[1].startswith("signed, but no --public-key was given")
    with pytest.raises(digest.DigestError, match="signed by another key than the one given"):
        digest.read(path, digest.load_public_key(tmp_path / "ours.pub"))


def test_an_unsigned_digest_with_a_key_given_is_refused(connect_as: ConnectAs, chains: uuid.UUID,
                                                        tmp_path: Path) -> None:
    public = digest.generate_key(tmp_path / "key")
    path = tmp_path / "digest.json"
    path.write_text(json.dumps(digest.document(take(connect_as(READER)))))
    assert digest.read(path)[1].startswith("unsigned")
    with pytest.raises(digest.DigestError, match="not signed"):
        digest.read(path, digest.load_public_key(public))
