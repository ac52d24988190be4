"""The canonical form (docs/canonical-form.md), computed in Python.

This is the verifier's own implementation: it hashes the rows as fetched and
never calls the database's hash functions.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

FORMAT = 1
# An entry with context is hashed in version 2 of the entry form; one without keeps version 1.
ENTRY_WITH_CONTEXT = 2
NO_CONTEXT = "{}"
ZERO_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def micros(instant: datetime) -> int:
    return (instant - _EPOCH) // _MICROSECOND


def entry_bytes(id: UUID, company_id: UUID, franchise_id: UUID | None, user_id: UUID | None, action: str,
                entity: str, entity_id: UUID, details_text: str, created_at: datetime, txid: int | None,
                context_text: str = NO_CONTEXT, origin: int | None = None) -> bytes:
    """details_text and context_text are the jsonb values' text form, as PostgreSQL prints them (`details::text`)."""
    def optional(value: UUID | None) -> bytes | None:
        return value.bytes if value is not None else None

    return raw_entry_bytes(id.bytes, company_id.bytes, optional(franchise_id), optional(user_id), action.encode(),
                           entity.encode(), entity_id.bytes, details_text.encode(), micros(created_at), txid,
                           context_text.encode(), origin)


_NO_CONTEXT_BYTES = NO_CONTEXT.encode()
# An entry with an origin (0012.portable-horizon) is hashed in version 3: the context always, then the origin.
ENTRY_WITH_ORIGIN = 3
_HEAD = {False: bytes((FORMAT,)), True: bytes((ENTRY_WITH_CONTEXT,))}
_ORIGIN_HEAD = bytes((ENTRY_WITH_ORIGIN,))
_STAMP = struct.Struct(">qq")
_INT8 = struct.Struct(">q")
_LENGTH = struct.Struct(">I")


def raw_entry_bytes(id: bytes, company_id: bytes, franchise_id: bytes | None, user_id: bytes | None, action: bytes,
                    entity: bytes, entity_id: bytes, details_text: bytes, created_micros: int, txid: int | None,
                    context_text: bytes, origin: int | None = None) -> bytes:
    """entry_bytes() from the values as the wire carries them: 16-byte uuids, UTF-8 text, microseconds.

    The verifier hashes millions of rows: building UUID, str and datetime objects only to take
    their bytes back would cost more than the hashing.
    """
    with_origin = origin is not None
    with_context = with_origin or context_text != _NO_CONTEXT_BYTES
    pack = _LENGTH.pack
    return b"".join((
        _ORIGIN_HEAD if with_origin else _HEAD[with_context], id, company_id,
        b"\x00" if franchise_id is None else b"\x01" + franchise_id,
        b"\x00" if user_id is None else b"\x01" + user_id,
        pack(len(action)), action, pack(len(entity)), entity, entity_id, pack(len(details_text)), details_text,
        _STAMP.pack(created_micros, txid or 0),
        pack(len(context_text)) + context_text if with_context else b"",
        _INT8.pack(origin) if with_origin else b"",
    ))


class RawNumber(str):
    """A JSON number kept as the text it was written in: PostgreSQL's numeric output, exactly."""


def parse_json(text: str) -> Any:
    """Parse JSON keeping each number's text and each object's key order, for jsonb_text().

    A key twice in one object is refused (ValueError): jsonb keeps one, PostgreSQL never prints two,
    and a reader that kept the first would read another value than the one hashed.
    """
    return json.loads(text, parse_float=RawNumber, parse_int=RawNumber, parse_constant=RawNumber,
                      object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key twice in one object: {sorted(k for k in set(keys) if keys.count(k) > 1)[0]!r}")
    return dict(pairs)


def jsonb_text(value: Any) -> str:
    """The text PostgreSQL prints for a jsonb value (`::text`), from a value parse_json() read from that text.

    jsonb prints keys in its own order (kept by the parse), `", "` and `": "` between items, and
    escapes strings as JSON does without escaping non-ASCII, as json.dumps(ensure_ascii=False) does.
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_string(key)}: {jsonb_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
    if isinstance(value, RawNumber):
        return str.__str__(value)
    if isinstance(value, str):
        return _json_string(value)
    return {True: "true", False: "false", None: "null"}[value]


def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree root, built level by level (an odd last node goes up unchanged)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(level) - 1:] if len(level) % 2 else paired
    return level[0]


# Blocks sealed since 0012.portable-horizon: form 1's header, then the origin of the range.
BLOCK_WITH_ORIGIN = 2


def block_hash(company_id: UUID, block_no: int, xid_from: int, xid_to: int, entry_count: int,
               merkle_root: bytes, prev_hash: bytes, sealed_at: datetime | int, form: int = FORMAT,
               origin: int | None = None) -> bytes:
    """sealed_at as a time, or as microseconds since 1970; form 2 adds the origin (None: none)."""
    sealed_micros = sealed_at if isinstance(sealed_at, int) else micros(sealed_at)
    tail = b""
    if form == BLOCK_WITH_ORIGIN:
        tail = b"\x00" if origin is None else b"\x01" + _INT8.pack(origin)
    return hashlib.sha256(b"".join((
        bytes((form,)), company_id.bytes, struct.pack(">qqqI", block_no, xid_from, xid_to, entry_count),
        merkle_root, prev_hash, struct.pack(">q", sealed_micros), tail,
    ))).digest()
