"""Verifying an export without the database: the company's chain beside its entries, both in files.

`audit-py export --format jsonl` writes FILE (the entries) and FILE.chain.json (the company's blocks);
`audit-py verify --export FILE` recomputes, from those files alone, every block's Merkle root and
hash, the links of the chain, and the hash of every exported entry, as audit_py.ledger does online.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from . import canonical, ledger

CHAIN_FORMAT = 1


def chain_path(export: Path) -> Path:
    return export.with_name(export.name + ".chain.json")


def write_chain(conn: psycopg.Connection[Any], company_id: UUID, since: datetime | None, until: datetime | None,
                export: Path) -> int:
    """Write the company's blocks beside an export of its entries; return how many."""
    with conn.cursor(binary=True) as cur:
        blocks = [ledger._Block(*row) for row in cur.execute(ledger._BLOCKS_SQL, (company_id,)).fetchall()]
    document = {
        "format": CHAIN_FORMAT,
        "company_id": str(company_id),
        # A partial export cannot show that an entry outside it is missing.
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "blocks": [{
            "block_no": b.block_no, "xid_from": b.xid_from, "xid_to": b.xid_to,
            "entry_ids": [str(i) for i in b.entry_ids], "entry_hashes": [h.hex() for h in b.entry_hashes],
            "merkle_root": b.merkle_root.hex(), "prev_hash": b.prev_hash.hex(), "block_hash": b.block_hash.hex(),
            "sealed_at": b.sealed_at.isoformat(),
        } for b in blocks],
    }
    chain_path(export).write_text(json.dumps(document, indent=1) + "\n")
    return len(blocks)


def verify_export(export: Path) -> ledger.Verdict:
    """Verify an export and its chain file; the first problem found, or what was verified."""
    document = json.loads(chain_path(export).read_text())
    company_id = UUID(document["company_id"])
    chain = [ledger._Block(b["block_no"], b["xid_from"], b["xid_to"], [UUID(i) for i in b["entry_ids"]],
                           [bytes.fromhex(h) for h in b["entry_hashes"]], bytes.fromhex(b["merkle_root"]),
                           bytes.fromhex(b["prev_hash"]), bytes.fromhex(b["block_hash"]),
                           datetime.fromisoformat(b["sealed_at"])) for b in document["blocks"]]
    sound, broken = ledger._check_links(company_id, chain)
    if broken is not None:
        return broken
    sealed = {entry_id: (block, entry_hash) for block in sound
              for entry_id, entry_hash in zip(block.entry_ids, block.entry_hashes, strict=True)}
    sealed_to = sound[-1].xid_to if sound else 0
    seen, unsealed = set(), 0
    with export.open(encoding="utf-8") as lines:
        for line in lines:
            entry = canonical.parse_json(line)
            entry_id, txid = UUID(entry["id"]), int(entry["txid"] or 0)
            if UUID(entry["company_id"]) != company_id:
                return _broken(company_id, f"entry {entry_id} belongs to another company", entry_id)
            if txid >= sealed_to:
                unsealed += 1
                continue
            if entry_id not in sealed:
                return _broken(company_id, f"entry {entry_id} lies in a sealed range but no block holds it",
                               entry_id)
            block, entry_hash = sealed[entry_id]
            if not block.xid_from <= txid < block.xid_to or _hash(entry) != entry_hash:
                return _broken(company_id, f"entry {entry_id} differs from the one sealed in block"
                                           f" {block.block_no}", entry_id, block.block_no)
            seen.add(entry_id)
    complete = document["since"] is None and document["until"] is None
    missing = sorted(set(sealed) - seen, key=lambda u: u.bytes) if complete else []
    if missing:
        return _broken(company_id, f"entry {missing[0]}, sealed in block {sealed[missing[0]][0].block_no},"
                                   " is missing from the export", missing[0], sealed[missing[0]][0].block_no)
    scope = "a complete export" if complete else "a partial export (entries outside it not checked)"
    return ledger.Verdict(company_id, True, f"Company {company_id}: {len(sound)} blocks and {len(seen)} sealed"
                                            f" entries verified offline, from {scope}; {unsealed} entries not"
                                            " sealed yet.")


def _hash(entry: dict[str, Any]) -> bytes:
    def optional(value: str | None) -> UUID | None:
        return UUID(value) if value else None

    return hashlib.sha256(canonical.entry_bytes(
        UUID(entry["id"]), UUID(entry["company_id"]), optional(entry["franchise_id"]), optional(entry["user_id"]),
        entry["action"], entry["entity"], UUID(entry["entity_id"]), canonical.jsonb_text(entry["details"]),
        datetime.fromisoformat(entry["created_at"]), int(entry["txid"]) if entry["txid"] is not None else None,
        canonical.jsonb_text(entry["context"]),
    )).digest()


def _broken(company_id: UUID, why: str, entry_id: UUID, block_no: int | None = None) -> ledger.Verdict:
    return ledger.Verdict(company_id, False, f"Company {company_id}: {why}.", block_no, entry_id)
