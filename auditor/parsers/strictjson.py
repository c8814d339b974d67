"""Strict, bounded JSON: size and nesting are checked in one linear pass before the standard parser runs,
and repeated keys are reported instead of silently keeping the last one."""
from __future__ import annotations

import json
import re
from typing import Any


class JsonLimitError(ValueError):
    """The text is larger or nested deeper than the caller allows (a limit, not a syntax error)."""


# Kept under its historical name: callers catch DepthError for both depth and size limits.
DepthError = JsonLimitError

_INTERESTING = re.compile(rb'[\[\]{}"]')
# The rest of a string after its opening quote, unrolled so that matching is linear: runs of plain
# characters, each escape consuming exactly the next byte.
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def depth(raw: bytes | str, stop_at: int) -> int:
    """Bracket nesting of a JSON text, strings skipped; stops counting once past `stop_at`.
    Linear in the input: every byte is looked at a bounded number of times. An unterminated string
    ends the scan (the parser rejects the text anyway)."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
    level = deepest = pos = 0
    search, rest = _INTERESTING.search, _STRING_REST.match
    while True:
        match = search(data, pos)
        if match is None:
            return deepest
        char = data[match.start()]
        pos = match.end()
        if char == 0x22:            # '"'
            tail = rest(data, pos)
            if tail is None:
                return deepest
            pos = tail.end()
        elif char in (0x5B, 0x7B):  # '[' '{'
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop_at:
                    return deepest
        else:
            level -= 1


def loads(raw: bytes | str, max_depth: int, *, max_bytes: int | None = None,
          what: str = "JSON") -> tuple[Any, list[str]]:
    """(value, repeated keys). Raises JsonLimitError past `max_bytes` or `max_depth`, ValueError on bad JSON
    (including integers longer than Python's conversion limit)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise JsonLimitError(f"{what} of {len(raw)} bytes > limit {max_bytes}")
    if depth(raw, max_depth) > max_depth:
        raise JsonLimitError(f"{what} nested deeper than {max_depth}")
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        return json.loads(raw, object_pairs_hook=pairs), duplicates
    except RecursionError:
        raise JsonLimitError(f"{what} nested too deeply") from None
