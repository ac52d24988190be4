"""JSON read back exactly: a fraction as a Decimal, an integer of any length, and JSON nested deeper
than Python can parse kept as its text (RawJson) rather than failing the read."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any


class RawJson(str):
    """JSON text that Python could not turn into objects (nested deeper than its recursion limit),
    kept as the database printed it rather than failing the whole read."""


# Documented, and pickled, as audit_py.queries.RawJson (queries imports it from here), as it always was.
RawJson.__module__ = "audit_py.queries"


def exact_int(text: str) -> int | Decimal:
    # Python refuses to parse integers of more than 4300 digits; a Decimal holds any.
    return int(text) if len(text) < 4300 else Decimal(text)


# Made once: json.loads() with hooks builds a new decoder, and its scanner, at every call.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=exact_int)
# What decode() runs, without its two matches for whitespace.
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """The value of JSON text, exactly; RawJson(text) where it nests deeper than Python recurses."""
    try:
        # The scanner alone: jsonb's text has no whitespace around the value for decode() to skip.
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # anything else: as decode() reads it, or refuses it
            return _DECODER.decode(text)
        return value
    except RecursionError:
        return RawJson(text)
