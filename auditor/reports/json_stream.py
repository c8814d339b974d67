"""Read one big JSON object from a file a chunk at a time, handing the items of chosen arrays to a callback
as each is parsed: a saved result with 100k files never exists as one dict tree (json.loads would build
~1 KiB of dicts and strings per file before the first FileRecord).

Hand-written because the standard library has no incremental reader; each value is still parsed by the
json module's C scanner (`raw_decode`), this only finds where values start. What json.loads accepts, this
accepts (the same values; duplicate keys keep the last), and what it rejects raises json.JSONDecodeError.
"""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any, BinaryIO

CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Reader:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf, self.pos, self.eof = "", 0, False

    def more(self, at_least: int = CHUNK) -> bool:
        """Append the next chunk (at least `at_least` bytes, so re-parsing a long value stays linear)."""
        if self.eof:
            return False
        data = self.fh.read(max(CHUNK, at_least))
        self.eof = not data
        self.buf = self.buf[self.pos:] + self.utf8.decode(data, final=self.eof)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos:self.pos + 1]

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            self.fail(f"expected {char!r}, found {found or 'the end of the file'!r}")
        self.pos += 1

    def fail(self, message: str) -> None:
        raise json.JSONDecodeError(message, self.buf, self.pos)

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.more(len(self.buf)):
                    continue
                raise
            if end == len(self.buf) and self.more(len(self.buf)):   # a number may go on in the next chunk
                continue
            self.pos = end
            return value


def read_object(fh: BinaryIO, streamed: dict[str, Callable[[Any], None]]) -> dict[str, Any]:
    """The top-level object's members; the items of an array under a key of `streamed` go to its callback
    one by one instead (that key maps to the item count)."""
    reader = _Reader(fh)
    first = reader.peek()
    if first and first in '["-0123456789tfn':       # JSON, but not an object: json.loads would take it
        raise ValueError("the top-level JSON value is not an object")
    reader.expect("{")
    out: dict[str, Any] = {}
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            key = reader.value()
            if not isinstance(key, str):
                reader.fail("an object key must be a string")
            reader.expect(":")
            out[key] = _array(reader, streamed[key]) if key in streamed and reader.peek() == "[" else reader.value()
            if reader.peek() == ",":
                reader.pos += 1
                continue
            reader.expect("}")
            break
    if reader.peek():
        reader.fail("extra data after the JSON object")
    return out


def _array(reader: _Reader, each: Callable[[Any], None]) -> int:
    reader.expect("[")
    count = 0
    if reader.peek() == "]":
        reader.pos += 1
        return count
    while True:
        each(reader.value())
        count += 1
        if reader.peek() == ",":
            reader.pos += 1
            continue
        reader.expect("]")
        return count
