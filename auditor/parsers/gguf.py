"""GGUF header reader: bounded (the gguf package memory-maps and trusts counts). Every count and length is
checked against the bytes left before it is used; a lie raises GgufError with a kind (UNPARSEABLE,
COUNT-LIE, LIMIT, TENSOR-INVALID, DUPLICATE-KEY, TRAILING-DATA) and a byte offset. Vocabulary arrays are
bounds-checked without being decoded; tensor data is never read."""
from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterator
from typing import Any

from auditor.record import field, record


class GgufError(Exception):
    def __init__(self, kind: str, location: str, evidence: str) -> None:
        super().__init__(evidence)
        self.kind, self.location, self.evidence = kind, location, evidence


@functools.cache
def format_spec() -> dict[str, Any]:
    """The format's tables (value types, ggml tensor types, limits): data in rules/weight-formats.yaml."""
    from auditor import rules
    spec: dict[str, Any] = rules.load("weight-formats.yaml")["gguf"]
    return spec


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + f"... [{len(value) - limit} more chars]"


_U64 = struct.Struct("<Q")
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@record
class TensorInfo:
    name: str
    dims: list[int]
    type: int
    offset: int
    at: int              # byte offset of the tensor's entry in the table


@record
class GGUF:
    version: int
    metadata: dict[str, Any]                 # scalars and strings; arrays summarised
    tensors: list[TensorInfo]
    data_start: int
    alignment: int
    duplicates: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self, buf: Any, size: int, spec: dict[str, Any]) -> None:
        self.buf, self.size, self.pos = buf, size, 0
        self.spec = spec

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise GgufError("UNPARSEABLE", f"byte {self.pos}",
                                f"{what} needs {n} bytes, only {self.size - self.pos} left (truncated)")

    def scalar(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self, what: str) -> str:
        at = self.pos
        length = self.scalar("<Q", f"{what} length")
        if length > self.size - self.pos:
            raise GgufError("COUNT-LIE", f"byte {at}",
                                f"{what} claims {length} bytes, only {self.size - self.pos} left in the file")
        if length > self.spec["max_string_length"]:
            raise GgufError("LIMIT", f"byte {at}", f"{what} of {length} bytes > {self.spec['max_string_length']}")
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GgufError("UNPARSEABLE", f"byte {at}", f"{what} is not UTF-8: {exc}") from None

    def _skip_strings(self, key: str, start: int, stop: int) -> None:
        """Vocabularies hold ~10^5 strings: bounds-check each length without decoding it."""
        buf, pos, size, limit = self.buf, self.pos, self.size, self.spec["max_string_length"]
        unpack = _U64.unpack_from
        for i in range(start, stop):
            if size - pos < 8:
                self.pos = pos
                self.need(8, f"{key}[{i}] length")
            (length,) = unpack(buf, pos)
            if length > size - pos - 8:
                raise GgufError("COUNT-LIE", f"byte {pos}",
                                    f"{key}[{i}] claims {length} bytes, only {size - pos - 8} left in the file")
            if length > limit:
                raise GgufError("LIMIT", f"byte {pos}", f"{key}[{i}] of {length} bytes > {limit}")
            pos += 8 + length
        self.pos = pos

    def count(self, what: str, minimum_each: int, limit: int) -> int:
        at = self.pos
        n = self.scalar("<Q", what)
        if n * minimum_each > self.size - self.pos:
            raise GgufError("COUNT-LIE", f"byte {at}",
                                f"{what} = {n} needs at least {n * minimum_each} bytes, only {self.size - self.pos} left")
        if n > limit:
            raise GgufError("LIMIT", f"byte {at}", f"{what} = {n} > limit {limit}")
        return n

    def value(self, vtype: int, key: str, depth: int = 0) -> Any:
        if vtype in _SCALAR:
            return self.scalar(_SCALAR[vtype], f"value of {key}")
        if vtype == 8:
            return self.string(f"string value of {key}")
        if vtype == 9:
            if depth > 0:
                raise GgufError("UNPARSEABLE", f"byte {self.pos}", f"{key}: nested arrays are not supported")
            at = self.pos
            etype = self.scalar("<I", f"array type of {key}")
            if etype not in self.spec["value_types"] or etype == 9:
                raise GgufError("UNPARSEABLE", f"byte {at}", f"{key}: unknown array element type {etype}")
            esize = self.spec["value_types"][etype][1]
            n = self.count(f"array length of {key}", esize or 8, self.spec["max_array_length"])
            if esize:                       # fixed-size elements: skip them, bounds already checked
                self.pos += n * esize
                return {"array": self.spec["value_types"][etype][0], "count": n}
            head = [_clip(self.string(f"{key}[{i}]"), 200) for i in range(min(n, 5))]
            self._skip_strings(key, 5, n)
            return {"array": "STRING", "count": n, "head": head}
        raise GgufError("UNPARSEABLE", f"byte {self.pos - 4}", f"{key}: unknown value type {vtype}")


def read(buf: Any, size: int, spec: dict[str, Any] | None = None) -> GGUF:
    """The header of a GGUF file in `buf` (bytes or an mmap of `size` bytes): metadata and the tensor table.
    Raises GgufError. `spec` is the format's tables (rules/weight-formats.yaml `gguf`)."""
    r = _Reader(buf, size, spec if spec is not None else format_spec())
    spec = r.spec
    r.need(4, "magic")
    if bytes(buf[0:4]) != b"GGUF":
        raise GgufError("UNPARSEABLE", "byte 0", f"magic {bytes(buf[0:4])!r} is not GGUF")
    r.pos = 4
    version = r.scalar("<I", "version")
    if version not in spec["versions"]:
        raise GgufError("UNPARSEABLE", "byte 4", f"unsupported GGUF version {version}")
    n_tensors = r.count("tensor count", 8 + 4 + 8 + 4 + 8, spec["max_tensors"])   # name len, n_dims, 1 dim, type, offset
    n_kv = r.count("metadata count", 8 + 4 + 1, spec["max_kv"])
    out = GGUF(version=version, metadata={}, tensors=[], data_start=0, alignment=spec["default_alignment"])
    for _ in range(n_kv):
        key = r.string("metadata key")
        at = r.pos
        vtype = r.scalar("<I", f"type of {key}")
        if vtype not in spec["value_types"]:
            raise GgufError("UNPARSEABLE", f"byte {at}", f"{key}: unknown value type {vtype}")
        if key in out.metadata:
            out.duplicates.append(key)
        out.metadata[key] = r.value(vtype, key)
    alignment = out.metadata.get("general.alignment", spec["default_alignment"])
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GgufError("UNPARSEABLE", "metadata general.alignment", f"alignment {alignment!r} is not a power of two")
    out.alignment = alignment
    for i in range(n_tensors):
        at = r.pos
        name = r.string(f"tensor {i} name")
        n_dims = r.scalar("<I", f"tensor {name!r} n_dims")
        if n_dims > spec["max_dims"]:
            raise GgufError("TENSOR-INVALID", f"byte {r.pos - 4}",
                                f"tensor {name!r} has {n_dims} dimensions (max {spec['max_dims']})")
        dims = [r.scalar("<Q", f"tensor {name!r} dim") for _ in range(n_dims)]
        ttype = r.scalar("<I", f"tensor {name!r} type")
        offset = r.scalar("<Q", f"tensor {name!r} offset")
        out.tensors.append(TensorInfo(name, dims, ttype, offset, at))
    out.data_start = -(-r.pos // alignment) * alignment
    return out


def tensor_problems(g: GGUF, size: int, spec: dict[str, Any] | None = None) -> Iterator[tuple[str, str, str]]:
    """(kind, location, evidence) for tensors whose type, dims, offset or bytes do not add up."""
    types = (spec if spec is not None else format_spec())["tensor_types"]
    names: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    for t in g.tensors:
        where = f"byte {t.at} (tensor {t.name!r})"
        if t.name in names:
            yield ("DUPLICATE-KEY", where, f"tensor name {t.name!r} repeated")
        names.add(t.name)
        if t.type not in types:
            yield ("TENSOR-INVALID", where, f"unknown ggml type {t.type}")
            continue
        type_name, block, block_bytes = types[t.type]
        elements = math.prod(t.dims) if t.dims else 1
        if elements >= 2**63 or any(d >= 2**63 for d in t.dims):
            yield ("TENSOR-INVALID", where, f"dims {t.dims} overflow a signed 64-bit element count")
            continue
        if t.dims and t.dims[0] % block:
            yield ("TENSOR-INVALID", where, f"first dim {t.dims[0]} is not a multiple of the {type_name} block {block}")
            continue
        nbytes = elements // block * block_bytes
        if t.offset % g.alignment:
            yield ("TENSOR-INVALID", where, f"offset {t.offset} not aligned to {g.alignment}")
        begin = g.data_start + t.offset
        if begin + nbytes > size:
            yield ("TENSOR-INVALID", where,
                   f"{type_name} {t.dims} needs bytes {begin}-{begin + nbytes}, the file ends at {size}")
            continue
        spans.append((begin, begin + nbytes, t.name))
    spans.sort()
    end = g.data_start
    for begin, stop, name in spans:
        if begin < end:
            yield ("TENSOR-INVALID", f"byte {begin} (tensor {name!r})", f"data overlaps the previous tensor (ends at {end})")
        end = max(end, stop)
    padded = -(-end // g.alignment) * g.alignment
    if spans and size > padded:
        yield ("TRAILING-DATA", f"bytes {padded}-{size}", f"{size - padded} bytes after the last tensor")
