"""Loading rows as the wire carries them, for the verifier.

A verifier must reach a verdict on any row a superuser can store, and hash it fast: a timestamp of
infinity or of the year 200000 has no Python datetime, and building UUID, str and datetime objects
only to take their bytes back costs more than the hashing. These binary loaders hand over the
bytes: uuids as their 16 bytes, text as its UTF-8 bytes (the session's client encoding is pinned to
UTF8 first), timestamptz as microseconds since 1970.
"""

from __future__ import annotations

import struct
from typing import Any, TypeVar

from psycopg import Cursor, ServerCursor
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format

# PostgreSQL counts from 2000-01-01; the canonical form from 1970-01-01.
_POSTGRES_EPOCH_MICROS = 946_684_800_000_000
_INT8 = struct.Struct(">q")
INFINITY = 2**63 - 1
MINUS_INFINITY = -(2**63)


class _RawBytes(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


class _Micros(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> int:
        value: int = _INT8.unpack(data)[0]
        if value in (INFINITY, MINUS_INFINITY):
            return value
        return value + _POSTGRES_EPOCH_MICROS


class _JsonbText(Loader):
    """jsonb's binary form is a version byte (1) then the very text `::text` prints, with no cast
    involved: a cast of a superuser's between jsonb and text cannot change what is hashed."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        if data[:1] != b"\x01":
            raise ValueError(f"jsonb binary form of version {bytes(data[:1])!r}, not 1")
        return bytes(data[1:])


def is_finite(micros: int | None) -> bool:
    """A time the canonical form can hold: finite, and within 64 bits of microseconds since 1970."""
    return micros is not None and MINUS_INFINITY < micros < INFINITY


AnyCursor = TypeVar("AnyCursor", Cursor[Any], ServerCursor[Any])


def raw(cursor: AnyCursor) -> AnyCursor:
    """The cursor, loading uuid and text as bytes, jsonb as its text's bytes, timestamptz as microseconds
    since 1970."""
    for name in ("uuid", "text"):
        cursor.adapters.register_loader(name, _RawBytes)
    cursor.adapters.register_loader("jsonb", _JsonbText)
    cursor.adapters.register_loader("timestamptz", _Micros)
    return cursor
