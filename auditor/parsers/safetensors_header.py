"""The safetensors header: an 8-byte little-endian length, then a JSON object of tensor entries
(dtype, shape, data_offsets) and an optional string->string `__metadata__`. Parsed strictly and bounded
(length cap before reading, linear depth pre-check, repeated keys kept); the data section is never read.
Problems carry a kind (UNPARSEABLE, LIMIT, BAD-DTYPE, SIZE-MISMATCH, OUT-OF-BOUNDS, OVERLAP, GAP,
TRAILING-DATA) that callers turn into findings."""
from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from typing import Any

from auditor.parsers import strictjson
from auditor.parsers.strictjson import JsonLimitError
from auditor.record import field, record


class HeaderError(Exception):
    """Nothing in the file can be verified: `kind` says why, `location` where it broke."""

    def __init__(self, kind: str, location: str, evidence: str) -> None:
        super().__init__(evidence)
        self.kind, self.location, self.evidence = kind, location, evidence


@record
class Tensor:
    name: str
    dtype: str
    shape: list[int]
    begin: int
    end: int


@record
class Header:
    header_len: int                 # bytes of JSON after the 8-byte length
    data_len: int                   # bytes of the data section
    metadata: dict[str, Any]
    tensors: list[Tensor]
    duplicates: list[str]
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, location, evidence)
    dtypes: dict[str, int] = field(default_factory=dict)

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


def read_header(source: str | bytes, size: int, *, max_header_bytes: int, max_depth: int, dtypes: dict[str, int],
                max_tensors: int) -> Header:
    """Parse and validate the header of one file, given by its path or its bytes (`dtypes`: name -> bits).
    Raises HeaderError when nothing can be verified; problems that leave the rest readable are in
    Header.problems."""
    if size < 8:
        raise HeaderError("UNPARSEABLE", "byte 0", f"file is {size} bytes; the 8-byte header length is missing")
    with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        if header_len > max_header_bytes:
            raise HeaderError("LIMIT", "byte 0",
                                f"header length {header_len} > limit {max_header_bytes}")
        if 8 + header_len > size:
            raise HeaderError("UNPARSEABLE", "byte 0",
                                f"header length {header_len} runs past the end of the {size}-byte file")
        raw = fh.read(header_len)
    if not raw.startswith(b"{"):
        raise HeaderError("UNPARSEABLE", "byte 8", f"header does not start with '{{': {raw[:40]!r}")
    try:
        text = raw.decode("utf-8")
        value, duplicates = strictjson.loads(text, max_depth, what="header")
    except JsonLimitError as exc:
        raise HeaderError("LIMIT", "byte 8", str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError("UNPARSEABLE", "byte 8", f"header is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HeaderError("UNPARSEABLE", "byte 8", f"header is a JSON {type(value).__name__}, not an object")
    if len(value) > max_tensors:
        raise HeaderError("LIMIT", "byte 8", f"{len(value)} header entries > {max_tensors}")
    header = Header(header_len=header_len, data_len=size - 8 - header_len, metadata={}, tensors=[],
                    duplicates=duplicates, dtypes=dtypes)
    for name, entry in value.items():
        if name == "__metadata__":
            _read_metadata(header, entry)
        else:
            _read_tensor(header, name, entry)
    return header


def _read_metadata(header: Header, entry: Any) -> None:
    if not isinstance(entry, dict):
        header.problems.append(("UNPARSEABLE", "header __metadata__",
                                f"__metadata__ is a {type(entry).__name__}, the format requires string->string"))
        return
    for key, value in entry.items():
        if not isinstance(value, str):
            header.problems.append(("UNPARSEABLE", f"header __metadata__ {key!r}",
                                    f"value is a {type(value).__name__}, the format requires a string"))
    header.metadata = entry


def _read_tensor(header: Header, name: str, entry: Any) -> None:
    where = f"header tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        header.problems.append(("UNPARSEABLE", where, f"entry lacks dtype/shape/data_offsets: {str(entry)[:200]}"))
        return
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
        header.problems.append(("UNPARSEABLE", where, f"data_offsets {offsets!r} is not [begin, end]"))
        return
    tensor = Tensor(name, str(dtype), shape if isinstance(shape, list) else [], offsets[0], offsets[1])
    header.tensors.append(tensor)
    bits = header.dtypes.get(dtype) if isinstance(dtype, str) else None
    if bits is None:
        header.problems.append(("BAD-DTYPE", where, f"dtype {dtype!r} is not a safetensors dtype"))
        return
    if not (isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        header.problems.append(("BAD-DTYPE", where, f"shape {shape!r} is not a list of non-negative integers"))
        return
    total_bits = math.prod(shape) * bits
    expected = total_bits // 8
    if total_bits % 8 or offsets[1] - offsets[0] != expected:
        header.problems.append(("SIZE-MISMATCH", where,
                                f"{dtype} {shape} needs {total_bits / 8:g} bytes, data_offsets {offsets} "
                                f"span {offsets[1] - offsets[0]}"))


def layout_problems(header: Header) -> Iterator[tuple[str, str, str]]:
    """Ranges in bounds, non-overlapping, and covering the data section with no gap or trailing bytes."""
    start = header.data_start
    cursor, previous = 0, ""
    for t in sorted(header.tensors, key=lambda t: (t.begin, t.end)):
        where = f"header tensor {t.name!r}"
        if t.end < t.begin or t.end > header.data_len:
            yield ("OUT-OF-BOUNDS", where,
                   f"data_offsets [{t.begin}, {t.end}] (file bytes {start + t.begin}-{start + t.end}) "
                   f"outside the {header.data_len}-byte data section")
            continue
        if t.begin < cursor:
            yield ("OVERLAP", where,
                   f"bytes {start + t.begin}-{start + min(cursor, t.end)} also belong to tensor {previous!r}")
        elif t.begin > cursor:
            yield ("GAP", f"bytes {start + cursor}-{start + t.begin}",
                   f"{t.begin - cursor} bytes before tensor {t.name!r} belong to no tensor")
        if t.end >= cursor:
            cursor, previous = t.end, t.name
    if cursor < header.data_len:
        yield ("TRAILING-DATA", f"bytes {start + cursor}-{start + header.data_len}",
               f"{header.data_len - cursor} bytes after the last tensor")


def trailing_start(header: Header) -> int | None:
    """File offset of the bytes after the last in-bounds tensor, or None when the data section is covered."""
    ends = [t.end for t in header.tensors if t.begin <= t.end <= header.data_len]
    last = max(ends, default=0)
    return header.data_start + last if last < header.data_len else None
