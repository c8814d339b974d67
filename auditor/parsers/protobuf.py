"""A bounded protobuf wire-format reader: walks fields of hostile messages without a schema library.
Every length is checked against the enclosing message before use; errors carry byte offsets."""
from __future__ import annotations

from collections.abc import Iterator


class ProtobufError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"byte {offset}: {message}")
        self.offset = offset


class Budget:
    """Caps the total number of fields read across one file."""

    def __init__(self, max_fields: int) -> None:
        self.left = max_fields

    def spend(self, offset: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise ProtobufError(offset, "field budget exhausted")


def varint(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise ProtobufError(start, "truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(start, "varint longer than 10 bytes")


def fields(buf: bytes | memoryview, start: int, end: int, budget: Budget) -> Iterator[tuple[int, int, int, object]]:
    """(field number, wire type, offset, value); value is an int, or (begin, end) for length-delimited."""
    pos = start
    while pos < end:
        at = pos
        budget.spend(at)
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(at, "field number 0")
        if wire == 0:
            value, pos = varint(buf, pos, end)
            yield number, wire, at, value
        elif wire == 1 or wire == 5:
            width = 8 if wire == 1 else 4
            if pos + width > end:
                raise ProtobufError(at, f"truncated fixed{width * 8} field {number}")
            yield number, wire, at, int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = varint(buf, pos, end)
            if length > end - pos:
                raise ProtobufError(at, f"field {number} claims {length} bytes, {end - pos} left in its message")
            yield number, wire, at, (pos, pos + length)
            pos += length
        else:
            raise ProtobufError(at, f"unsupported wire type {wire} in field {number}")


def submessages(buf: bytes | memoryview, span: tuple[int, int], number: int, budget: Budget) -> Iterator[tuple[int, tuple[int, int]]]:
    """(offset, span) of every length-delimited field `number` in the message at `span`."""
    for n, wire, at, value in fields(buf, span[0], span[1], budget):
        if n == number and wire == 2:
            yield at, value  # type: ignore[misc]


def string(buf: bytes | memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", "replace")
