"""Sealing, verifying and taking digests of the companies' hash chains.

verify() is the independent verifier: it reads the rows and the catalogs and
recomputes every hash in Python (audit_py.canonical), trusting no function of
the database. audit.verify() in SQL makes the same checks on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from . import canonical

TRIGGERS = {
    (table, name):
        f"CREATE TRIGGER {name} {event} ON audit.{table} FOR EACH {level} EXECUTE FUNCTION audit.{function}()"
    for table, name, event, level, function in [
        ("audit_logs", "audit_logs_stamp", "BEFORE INSERT", "ROW", "_stamp_entry"),
        ("audit_logs", "audit_logs_refuse_update", "BEFORE UPDATE", "ROW", "_refuse_change"),
        ("audit_logs", "audit_logs_refuse_delete", "BEFORE DELETE", "ROW", "_refuse_change"),
        ("audit_logs", "audit_logs_refuse_truncate", "BEFORE TRUNCATE", "STATEMENT", "_refuse_change"),
        ("blocks", "blocks_refuse_update", "BEFORE UPDATE", "ROW", "_refuse_change"),
        ("blocks", "blocks_refuse_delete", "BEFORE DELETE", "ROW", "_refuse_change"),
        ("blocks", "blocks_refuse_truncate", "BEFORE TRUNCATE", "STATEMENT", "_refuse_change"),
    ]
}

# SHA-256 of body, SECURITY DEFINER flag and settings of each function that
# writes, protects, seals or verifies, as the migrations install them
# (tests/test_tamper_evidence.py recomputes them from a fresh install).
FUNCTIONS = {
    "audit._refuse_change()": "60d1a65caa43b1f954e013e0f6c023b52aa9029381bca78ba973835c0b4b1f9e",
    "audit._stamp_entry()": "a6769bf2dd97358082a6930aba0dfc666014c9d0339bdb7fa8b432c4230a8d4f",
    "audit._context_uuid(text)": "33a6d3e1142b0be3713839242c3ea9977d7387299880768bbc9b0007b87320ca",
    "audit._context_user(text)": "78d8f5a770eceda0c9079a7340f8e3d57188e0cc42614406cc11ad71dce7d8dd",
    "audit._context_extra()": "908a9f6c09482249c86962eedb9fbbef6cae33755e7f4770da5e7b734702853d",
    "audit._require_user(text)": "e8bef3fb1001c2a60b244686d67b4da2e2f8709dfc040c2cc4397ebfdf260e57",
    "audit._entry_problem(uuid,text,text,uuid,jsonb)":
        "7fd1a507835b9058340df3be9388841b0a0f4a5e1abc1482ad74f0dac9042dab",
    "audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid)":
        "2c5d849f4601b6943d9f32e022ddb360bc89f17a5ce2835170d9d84d00a2e8a9",
    "audit.record_audit_many(uuid[],text[],text[],uuid[],jsonb[],uuid[],uuid[])":
        "55388e08b680d1771ac6bd8703ace635038ec21a9f49240fa0732512b91862a8",
    "audit._missing_company(text,text)": "3e2e99b6c7368988df6596047fdf2baba0a213e2b9a7ebd7f519dffb92549fa1",
    "audit._track_changes()": "b1ab9483b016f715eb2f0425125a27a775154e92532917a235f8bdb8fb0f113f",
    "audit._untrackable(regclass)": "be4a3e2a9beffbd9276f4360865895edd879166f3b5aabd9f8adf29afa5aa486",
    "audit._refuse_tracking(text)": "05b9a8d90f6be7cc436a1ab51499fe7df0c4d1053bd69dfe23cc68769c0a47e7",
    "audit._refuse_truncate()": "329b7d205b6bc7aa951a86d79378326cb27af14ac99b13246311bda196cff23d",
    "audit._str_bytes(text)": "3bf923e5562146a485b5d85bb13d324531b1352e393bd31959752055ef45f518",
    "audit._opt_uuid_bytes(uuid)": "80020adfce59c22a949d032af9aaa9cd1ecac33fd7f6b618dbd7067104b937de",
    "audit._micros(timestamp with time zone)": "205468512f459fa240e62c261b1c7cbb305cd1226e72daee2e35b58ddb5b0715",
    "audit.entry_hash(audit.audit_logs)": "0dd7c1be918428bad5f1965cbe63ec085a279e837dec273103418022e119ccb2",
    "audit._merkle_root(bytea[])": "b7680745e537e2c63f0fddc9bc41b1277eae6b9369d306f44ea431e665340e41",
    "audit._block_hash(uuid,bigint,bigint,bigint,integer,bytea,bytea,timestamp with time zone)":
        "8067120b9910f7c2b6d7097c23d141b077c3bdf98639d37d9db218a66841b785",
    "audit.seal()": "3c08b5b60a7a5a690c2b72e344fc7697e98a0779f97b17eddc996c36e06bbca2",
}

_TRIGGERS_SQL = """
SELECT c.relname, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'audit'::regnamespace AND NOT t.tgisinternal
"""
_RULES_SQL = """
SELECT w.rulename, c.relname FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class
WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind = 'r'
"""
_FUNCTIONS_SQL = """
SELECT p.oid::regprocedure::text, p.prosrc, p.prosecdef, p.proconfig
FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
"""
_BLOCKS_SQL = """
SELECT block_no, xid_from, xid_to, entry_ids, entry_hashes, merkle_root, prev_hash, block_hash, sealed_at
FROM audit.blocks WHERE company_id = %s ORDER BY block_no
"""
# Ordered by transaction, so that the entries of each block arrive together, and streamed.
_ENTRIES_SQL = """
SELECT id, company_id, franchise_id, user_id, action, entity, entity_id, details::text, created_at, txid, context::text
FROM audit.audit_logs WHERE company_id = %s AND coalesce(txid, 0) < %s
ORDER BY coalesce(txid, 0)
"""
_UNSEALED_SQL = "SELECT count(*) FROM audit.audit_logs WHERE company_id = %s AND coalesce(txid, 0) >= %s"
_ORPHAN_SQL = """
SELECT id FROM audit.audit_logs
WHERE company_id = %s AND coalesce(txid, 0) >= %s AND coalesce(txid, 0) < %s
ORDER BY id LIMIT 1
"""
_ENABLED = {"D": "disabled", "O": "enabled only for origin sessions", "R": "enabled only for replica sessions"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one company's chain, in words an auditor reads."""

    company_id: UUID | None
    ok: bool
    report: str
    block_no: int | None = None
    entry_id: UUID | None = None


@dataclass(frozen=True)
class _Block:
    block_no: int
    xid_from: int
    xid_to: int
    entry_ids: list[UUID]
    entry_hashes: list[bytes]
    merkle_root: bytes
    prev_hash: bytes
    block_hash: bytes
    sealed_at: Any


def protection_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """What is wrong with the triggers and functions that protect the log; empty when all is in place."""
    problems = []
    triggers = {(table, name): (enabled, definition) for table, name, enabled, definition
                in conn.execute(_TRIGGERS_SQL).fetchall()}
    for (table, name), expected in TRIGGERS.items():
        if (table, name) not in triggers:
            problems.append(f"trigger {name} on audit.{table} is missing: it was dropped")
            continue
        enabled, definition = triggers[(table, name)]
        if enabled != "A":
            problems.append(f"trigger {name} on audit.{table} is {_ENABLED.get(enabled, enabled)}, not enabled always")
        if definition != expected:
            problems.append(f"trigger {name} on audit.{table} was redefined: {definition}")
    for rule, table in conn.execute(_RULES_SQL).fetchall():
        problems.append(f"rule {rule} on audit.{table} was added: it can rewrite or swallow writes")
    functions = {signature: _fingerprint(source, secdef, config) for signature, source, secdef, config
                 in conn.execute(_FUNCTIONS_SQL).fetchall()}
    for signature, fingerprint in FUNCTIONS.items():
        if signature not in functions:
            problems.append(f"function {signature} is missing: it was dropped")
        elif functions[signature] != fingerprint:
            problems.append(f"function {signature} was replaced: its definition is not the one installed")
    return problems


def _fingerprint(source: str, security_definer: bool, config: list[str] | None) -> str:
    text = f"{source}\n{'true' if security_definer else 'false'}\n{','.join(config or [])}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def companies(conn: psycopg.Connection[Any]) -> list[UUID]:
    """Every company with a chain or an entry."""
    rows = conn.execute("SELECT company_id FROM audit.blocks UNION SELECT DISTINCT company_id FROM audit.audit_logs"
                        " ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def verify(conn: psycopg.Connection[Any], company_id: UUID) -> Verdict:
    """Verify one company's chain against its entries, and the protections; read no other company's entries."""
    with conn.transaction():  # the entries are streamed through a server-side cursor
        return _verify(conn, company_id)


def _verify(conn: psycopg.Connection[Any], company_id: UUID) -> Verdict:
    problems = protection_problems(conn)
    if problems:
        return Verdict(company_id, False, "The protections of the log were tampered with: " + "; ".join(problems))
    # Read before the chain: a seal committing in between only adds blocks above this horizon,
    # so that no entry it seals can pass for an orphan below.
    horizon = _scalar(conn, "SELECT coalesce(max(xid_to), 0) FROM audit.blocks")
    # Binary results throughout: their decoding depends on no session setting (DateStyle, ...).
    with conn.cursor(binary=True) as cur:
        chain = [_Block(*row) for row in cur.execute(_BLOCKS_SQL, (company_id,)).fetchall()]
    sound, broken = _check_links(company_id, chain)
    sealed_to = sound[-1].xid_to if sound else 0
    verdict = _check_entries(conn, company_id, sound, sealed_to)
    if verdict is not None:
        return verdict
    if broken is not None:
        return broken
    # audit.seal() seals every company up to the same horizon: an entry below the newest
    # horizon that no block holds lost its block, or came later.
    orphan = conn.execute(_ORPHAN_SQL, (company_id, sealed_to, horizon)).fetchone()
    if orphan is not None:
        return Verdict(company_id, False, f"Company {company_id}: entry {orphan[0]} lies in a sealed range but no"
                                          " block holds it: the company's last block was removed, or the entry"
                                          " inserted afterwards.", None, orphan[0])
    unsealed = _scalar(conn, _UNSEALED_SQL, (company_id, sealed_to))
    entries = sum(len(block.entry_ids) for block in sound)
    return Verdict(company_id, True, f"Company {company_id}: {len(sound)} blocks and {entries} sealed entries"
                                     f" verified; {unsealed} entries not sealed yet; protections in place.")


def _scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, "an aggregate always returns a row"
    return row[0]


def _check_links(company_id: UUID, chain: list[_Block]) -> tuple[list[_Block], Verdict | None]:
    """The chain's sound prefix, and what breaks it after that, if anything."""
    prev_hash, xid_to = canonical.ZERO_HASH, 0
    for number, block in enumerate(chain, start=1):
        why = None
        if block.block_no != number:
            why = f"block {number} is missing: the chain goes from block {number - 1} to block {block.block_no}"
        elif block.prev_hash != prev_hash or block.xid_from != xid_to:
            why = f"block {number} does not follow block {number - 1}: the chain was cut, reordered or rewritten here"
        elif (len(block.entry_ids) != len(block.entry_hashes)
              or canonical.merkle_root(block.entry_hashes) != block.merkle_root
              or canonical.block_hash(company_id, block.block_no, block.xid_from, block.xid_to, len(block.entry_ids),
                                      block.merkle_root, block.prev_hash, block.sealed_at) != block.block_hash):
            why = f"block {number} was rewritten: its contents no longer match its hash"
        if why:
            return chain[:number - 1], Verdict(company_id, False, f"Company {company_id}: {why}.", number)
        prev_hash, xid_to = block.block_hash, block.xid_to
    return chain, None


def _check_entries(conn: psycopg.Connection[Any], company_id: UUID, chain: list[_Block],
                   sealed_to: int) -> Verdict | None:
    """Recompute each sealed entry's hash and compare block by block; the first difference, if any."""
    with conn.cursor(name="audit_py_verify", binary=True) as cur:
        cur.itersize = 10_000
        cur.execute(_ENTRIES_SQL, (company_id, sealed_to))
        rows: Iterator[tuple[Any, ...]] = iter(cur)
        pending = next(rows, None)
        for block in chain:
            found: dict[UUID, bytes] = {}
            while pending is not None and (pending[9] or 0) < block.xid_to:
                found[pending[0]] = hashlib.sha256(canonical.entry_bytes(*pending)).digest()
                pending = next(rows, None)
            verdict = _compare(company_id, block, found)
            if verdict is not None:
                return verdict
    return None


def _compare(company_id: UUID, block: _Block, found: dict[UUID, bytes]) -> Verdict | None:
    sealed = dict(zip(block.entry_ids, block.entry_hashes, strict=True))
    where = f"Block {block.block_no} of company {company_id}"
    for entry_id in sorted(set(sealed) | set(found), key=lambda u: u.bytes):
        if entry_id not in found:
            return Verdict(company_id, False, f"{where}: entry {entry_id} was sealed in this block and is missing;"
                                              " it was deleted.", block.block_no, entry_id)
        if entry_id not in sealed:
            return Verdict(company_id, False, f"{where}: entry {entry_id} was not sealed in this block; it was"
                                              " inserted afterwards.", block.block_no, entry_id)
        if found[entry_id] != sealed[entry_id]:
            return Verdict(company_id, False, f"{where}: entry {entry_id} was changed after it was sealed.",
                           block.block_no, entry_id)
    return None


def seal(conn: psycopg.Connection[Any]) -> list[tuple[UUID, int, int]]:
    """Run audit.seal() in its own transaction; return (company_id, block_no, entry_count) per block made."""
    with conn.transaction():
        return [(row[0], row[1], row[2]) for row in conn.execute("SELECT * FROM audit.seal()").fetchall()]


def check_digest(conn: psycopg.Connection[Any], digest: dict[str, Any],
                 only: list[UUID] | None = None) -> list[Verdict]:
    """Each company's chain must still hold the block the digest recorded (verify() checks the rest)."""
    results = []
    for company, head in sorted(digest["chains"].items()):
        company_id = UUID(company)
        if only and company_id not in only:
            continue
        row = conn.execute("SELECT block_hash FROM audit.blocks WHERE company_id = %s AND block_no = %s",
                           (company_id, head["block_no"])).fetchone()
        where = f"Company {company_id}: the digest of {digest['taken_at']} records block {head['block_no']}"
        if row is None:
            results.append(Verdict(company_id, False, f"{where}, which no longer exists: the chain was cut or"
                                                      " rewritten since.", head["block_no"]))
        elif bytes(row[0]).hex() != head["block_hash"]:
            results.append(Verdict(company_id, False, f"{where} with another hash: the chain was rewritten"
                                                      " since.", head["block_no"]))
        else:
            results.append(Verdict(company_id, True, f"{where}; the chain still holds it."))
    return results

