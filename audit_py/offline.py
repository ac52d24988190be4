"""Verifying an export without the database: the company's chain beside its entries, both in files.

`audit-py export --format jsonl` writes FILE (the entries) and FILE.chain.json (the company's blocks);
`audit-py verify --export FILE` recomputes, from those files alone, every block's Merkle root and
hash, the links of the chain, and the hash of every exported entry, as audit_py.ledger does online.

A chain file proves nothing by itself: whoever can edit an entry can recompute the chain with this
very code. A digest kept elsewhere (`--digest`, signed and checked with `--public-key`) is what
authenticates it, up to the block the digest records.
"""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from . import canonical, ledger, wire
from .ledger import TAMPERED, UNVERIFIABLE, VERIFIED, Verdict

CHAIN_FORMAT = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def chain_path(export: Path) -> Path:
    return export.with_name(export.name + ".chain.json")


def write_chain(conn: psycopg.Connection[Any], company_id: UUID, since: datetime | None, until: datetime | None,
                export: Path) -> int:
    """Write the company's blocks beside an export of its entries; return how many."""
    with wire.raw(conn.cursor(binary=True)) as cur:
        blocks = [ledger._Block(*row) for row in cur.execute(ledger._BLOCKS_SQL, (company_id,)).fetchall()]
    head = json.dumps({
        "format": CHAIN_FORMAT,
        "company_id": str(company_id),
        # A partial export cannot show that an entry outside it is missing.
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    })
    # A block a line, each by json's C encoder: with an indent, json.dumps() runs its Python encoder, a
    # microsecond an array item, and a sealed company's chain holds two for each of its entries.
    with chain_path(export).open("w") as file:
        file.write(head[:-1] + ', "blocks": [\n')
        for n, b in enumerate(blocks):
            file.write((",\n" if n else "") + json.dumps({
                "block_no": b.block_no, "xid_from": b.xid_from, "xid_to": b.xid_to,
                "entry_ids": [_uuid_text(i) for i in b.entry_ids], "entry_hashes": [h.hex() for h in b.entry_hashes],
                "merkle_root": b.merkle_root.hex(), "prev_hash": b.prev_hash.hex(), "block_hash": b.block_hash.hex(),
                "sealed_at": _iso(b.sealed_at), "format": b.format, "origin": b.origin}))
        file.write("\n]}\n")
    return len(blocks)


def _uuid_text(raw: bytes) -> str:
    """A uuid's 16 bytes as its text, as str(UUID(bytes=raw)) writes it, in a third of its time."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso(micros: int) -> str | int:
    """A time as ISO 8601, or as microseconds where Python has no datetime for it (a forged one)."""
    try:
        return (_EPOCH + timedelta(microseconds=micros)).isoformat()
    except OverflowError:
        return micros


def _micros(value: str | int) -> int:
    return value if isinstance(value, int) else canonical.micros(datetime.fromisoformat(value))


def verify_export(export: Path, held: dict[str, Any] | None = None) -> list[Verdict]:
    """Verify an export and its chain file, against a digest when one is given (already read and
    judged by audit_py.digest.read). A verdict on the files, and one on their authentication."""
    try:
        document = json.loads(chain_path(export).read_text())
        company_id = UUID(document["company_id"])
        chain = [ledger._Block(b["block_no"], b["xid_from"], b["xid_to"], [UUID(i).bytes for i in b["entry_ids"]],
                               [bytes.fromhex(h) for h in b["entry_hashes"]], bytes.fromhex(b["merkle_root"]),
                               bytes.fromhex(b["prev_hash"]), bytes.fromhex(b["block_hash"]),
                               _micros(b["sealed_at"]), b.get("format", canonical.FORMAT), b.get("origin"))
                 for b in document["blocks"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [Verdict(None, UNVERIFIABLE, f"{chain_path(export)} is not a chain file: {error}.")]
    try:
        sound, broken = ledger._check_links(company_id, chain)
        if broken is not None:
            return [broken]
        verdict = _check_entries(export, company_id, sound, document)
    except (ValueError, KeyError, TypeError, struct.error, OverflowError) as error:
        return [Verdict(company_id, TAMPERED, f"{chain_path(export)} holds what no export writes"
                                              f" ({type(error).__name__}: {error}): it was edited.")]
    if not verdict.ok:
        return [verdict]
    verdicts = [verdict, _authentication(company_id, sound, held)]
    if document["since"] is not None or document["until"] is not None:
        # Nothing authenticates the range the chain file claims: declared partial, any export would
        # let a removed entry pass for one outside it.
        verdicts.append(Verdict(company_id, UNVERIFIABLE, "A partial export (--since/--until) cannot show that no"
                                                          " entry was removed from it: export the whole company to"
                                                          " prove that."))
    return verdicts


def _check_entries(export: Path, company_id: UUID, sound: list[ledger._Block], document: dict[str, Any]) -> Verdict:
    sealed = {entry_id: (block, entry_hash) for block in sound
              for entry_id, entry_hash in zip(block.entry_ids, block.entry_hashes, strict=True)}
    sealed_to: dict[int | None, int] = {}  # for each origin, where its sealed ranges end
    for block in sound:
        sealed_to[block.origin] = block.xid_to
    since = _aware(document["since"])
    until = _aware(document["until"])
    seen: dict[bytes, int] = {}
    unsealed = 0
    try:
        lines = export.open(encoding="utf-8")
    except OSError as error:
        return Verdict(company_id, UNVERIFIABLE, f"{export} cannot be read: {error}.")
    with lines:
        for number, line in enumerate(lines, start=1):
            try:
                entry = canonical.parse_json(line)
                entry_id, txid = UUID(entry["id"]), int(entry["txid"] or 0)
                origin = int(entry["origin"]) if entry.get("origin") is not None else None
                created_at = datetime.fromisoformat(entry["created_at"])
                entry_hash = _hash(entry)
            except RecursionError:
                return Verdict(company_id, UNVERIFIABLE, f"Company {company_id}: line {number} of the export nests"
                                                         " deeper than this verifier can read: verify it online.")
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                return _broken(company_id, f"line {number} of the export is not an entry as export writes it"
                                           f" ({type(error).__name__}: {error})")
            if entry_id.bytes in seen:
                return _broken(company_id, f"entry {entry_id} appears twice in the export, on lines"
                                           f" {seen[entry_id.bytes]} and {number}", entry_id)
            seen[entry_id.bytes] = number
            if UUID(entry["company_id"]) != company_id:
                return _broken(company_id, f"entry {entry_id} belongs to another company", entry_id)
            if (since and created_at < since) or (until and created_at >= until):
                return _broken(company_id, f"entry {entry_id} lies outside the export's time range: the export"
                                           " never wrote it", entry_id)
            if entry_id.bytes in sealed:
                # Whatever transaction the line claims: a sealed entry is checked against its seal.
                block, sealed_hash = sealed[entry_id.bytes]
                if not block.xid_from <= txid < block.xid_to or origin != block.origin or entry_hash != sealed_hash:
                    return _broken(company_id, f"entry {entry_id} differs from the one sealed in block"
                                               f" {block.block_no}", entry_id, block.block_no)
            elif txid < sealed_to.get(origin, 0):
                return _broken(company_id, f"entry {entry_id} lies in a sealed range but no block holds it", entry_id)
            else:
                unsealed += 1
    complete = since is None and until is None
    missing = sorted(set(sealed) - set(seen)) if complete else []
    if missing:
        entry_id = UUID(bytes=missing[0])
        return _broken(company_id, f"entry {entry_id}, sealed in block {sealed[missing[0]][0].block_no}, is missing"
                                   " from the export", entry_id, sealed[missing[0]][0].block_no)
    checked = len(seen) - unsealed
    scope = "a complete export" if complete else "a partial export (entries outside it not checked)"
    return Verdict(company_id, VERIFIED, f"Company {company_id}: {len(sound)} blocks and {checked} sealed entries"
                                         f" verified offline, from {scope}; {unsealed} entries not sealed yet,"
                                         " which nothing can vouch for.")


def _aware(value: str | None) -> datetime | None:
    """A time of the chain file; export writes them with their offset."""
    if value is None:
        return None
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError(f"a time without its offset: {value}")
    return instant


def _authentication(company_id: UUID, sound: list[ledger._Block], held: dict[str, Any] | None) -> Verdict:
    """Whether the chain file is the database's chain: only a digest kept elsewhere can say."""
    if held is None:
        return Verdict(company_id, UNVERIFIABLE, "The chain file is unauthenticated: whoever can edit the export"
                                                 " can recompute it. Give --digest (and --public-key) to prove it.")
    head = held["chains"].get(str(company_id))
    if head is None:
        return Verdict(company_id, UNVERIFIABLE, f"The digest of {held['taken_at']} records no chain for company"
                                                 f" {company_id}: it cannot authenticate this chain file.")
    where = f"The digest of {held['taken_at']} records block {head['block_no']} of company {company_id}"
    block = next((b for b in sound if b.block_no == head["block_no"]), None)
    if block is None:
        return Verdict(company_id, TAMPERED, f"{where}, which the chain file lacks: it was cut or rewritten.",
                       head["block_no"])
    if block.block_hash.hex() != head["block_hash"]:
        return Verdict(company_id, TAMPERED, f"{where} with another hash: the chain file was rewritten.",
                       head["block_no"])
    newer = len(sound) - block.block_no
    tail = f"; the {newer} blocks after it are newer than the digest and not authenticated by it" if newer else ""
    return Verdict(company_id, VERIFIED, f"{where}; the chain file holds it{tail}.")


def _hash(entry: dict[str, Any]) -> bytes:
    def optional(value: str | None) -> UUID | None:
        return UUID(value) if value else None

    return hashlib.sha256(canonical.entry_bytes(
        UUID(entry["id"]), UUID(entry["company_id"]), optional(entry["franchise_id"]), optional(entry["user_id"]),
        entry["action"], entry["entity"], UUID(entry["entity_id"]), canonical.jsonb_text(entry["details"]),
        datetime.fromisoformat(entry["created_at"]), int(entry["txid"]) if entry["txid"] is not None else None,
        canonical.jsonb_text(entry["context"]), int(entry["origin"]) if entry.get("origin") is not None else None,
    )).digest()


def _broken(company_id: UUID, why: str, entry_id: UUID | None = None, block_no: int | None = None) -> Verdict:
    return Verdict(company_id, TAMPERED, f"Company {company_id}: {why}.", block_no, entry_id)
