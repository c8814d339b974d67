"""A bounded protobuf wire-format reader: walks fields of hostile messages without a schema library.

Every legal wire type is read: varint (0), fixed64 (1), length-delimited (2), groups (3 start, 4 end,
possibly nested) and fixed32 (5). Every length is checked against the enclosing message before use;
errors carry byte offsets. A group is yielded as the span of its content, like a length-delimited field,
so a walker that skips unknown fields skips it too.
"""
from __future__ import annotations

from collections.abc import Iterator

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_GROUP_START, WIRE_GROUP_END, WIRE_FIXED32 = 0, 1, 2, 3, 4, 5
MAX_GROUP_DEPTH = 64


class ProtobufError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"byte {offset}: {message}")
        self.offset = offset


class BudgetExhausted(ProtobufError):
    """The field budget ran out: a limit, not a malformed message."""


class Budget:
    """Caps the total number of fields read across one file."""

    def __init__(self, max_fields: int) -> None:
        self.left = max_fields

    def spend(self, offset: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise BudgetExhausted(offset, "field budget exhausted")


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


def _scalar_end(buf: bytes | memoryview, at: int, pos: int, end: int, number: int, wire: int) -> int:
    """Where a non-group field whose key ends at `pos` ends."""
    if wire == WIRE_VARINT:
        return varint(buf, pos, end)[1]
    if wire in (WIRE_FIXED64, WIRE_FIXED32):
        width = 8 if wire == WIRE_FIXED64 else 4
        if pos + width > end:
            raise ProtobufError(at, f"truncated fixed{width * 8} field {number}")
        return pos + width
    if wire == WIRE_LEN:
        length, pos = varint(buf, pos, end)
        if length > end - pos:
            raise ProtobufError(at, f"field {number} claims {length} bytes, {end - pos} left in its message")
        return pos + length
    raise ProtobufError(at, f"invalid wire type {wire} in field {number}")


def _group_end(buf: bytes | memoryview, at: int, number: int, pos: int, end: int, budget: Budget) -> tuple[int, int]:
    """(end of the group's content, position after its END_GROUP tag) for a group `number` opened at `at`.
    Iterative: nested groups are tracked on a list, never on the C stack."""
    open_groups = [number]
    while pos < end:
        field_at = pos
        budget.spend(field_at)
        key, pos = varint(buf, pos, end)
        n, wire = key >> 3, key & 7
        if n == 0:
            raise ProtobufError(field_at, "field number 0")
        if wire == WIRE_GROUP_START:
            open_groups.append(n)
            if len(open_groups) > MAX_GROUP_DEPTH:
                raise ProtobufError(field_at, f"groups nested deeper than {MAX_GROUP_DEPTH}")
        elif wire == WIRE_GROUP_END:
            if open_groups.pop() != n:
                raise ProtobufError(field_at, f"END_GROUP {n} does not close the open group")
            if not open_groups:
                return field_at, pos
        else:
            pos = _scalar_end(buf, field_at, pos, end, n, wire)
    raise ProtobufError(at, f"group {number} is never closed")


def fields(buf: bytes | memoryview, start: int, end: int, budget: Budget) -> Iterator[tuple[int, int, int, object]]:
    """(field number, wire type, offset, value); value is an int, or (begin, end) for a length-delimited
    field or a group's content."""
    pos = start
    while pos < end:
        at = pos
        budget.left -= 1
        if budget.left < 0:
            raise BudgetExhausted(at, "field budget exhausted")
        key = buf[pos]
        if key < 0x80:          # one-byte keys and values are the common case: no call
            pos += 1
        else:
            key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(at, "field number 0")
        if wire == WIRE_VARINT:
            if pos < end and buf[pos] < 0x80:
                value, pos = buf[pos], pos + 1
            else:
                value, pos = varint(buf, pos, end)
            yield number, wire, at, value
        elif wire in (WIRE_FIXED64, WIRE_FIXED32):
            after = _scalar_end(buf, at, pos, end, number, wire)
            yield number, wire, at, int.from_bytes(buf[pos:after], "little")
            pos = after
        elif wire == WIRE_LEN:
            begin = varint(buf, pos, end)[1]
            pos = _scalar_end(buf, at, pos, end, number, wire)
            yield number, wire, at, (begin, pos)
        elif wire == WIRE_GROUP_START:
            begin = pos
            content_end, pos = _group_end(buf, at, number, pos, end, budget)
            yield number, wire, at, (begin, content_end)
        elif wire == WIRE_GROUP_END:
            raise ProtobufError(at, f"END_GROUP {number} without a matching START_GROUP")
        else:
            raise ProtobufError(at, f"invalid wire type {wire} in field {number}")


def submessages(buf: bytes | memoryview, span: tuple[int, int], number: int, budget: Budget) -> Iterator[tuple[int, tuple[int, int]]]:
    """(offset, span) of every length-delimited field `number` in the message at `span`."""
    for n, wire, at, value in fields(buf, span[0], span[1], budget):
        if n == number and wire == WIRE_LEN:
            yield at, value  # type: ignore[misc]


def string(buf: bytes | memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", "replace")
