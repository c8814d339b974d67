"""safetensors: parse the header ourselves (never the data section) and check that the tensors tile
the data exactly; publish __metadata__ as facts; cross-check with the safetensors library."""
from __future__ import annotations

import functools
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor import rules
from auditor.facts import SafetensorsFacts
from auditor.model import Finding, Limits
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import (
    DepthError,
    FormatProblem,
    clip,
    metadata_findings,
    strict_json,
    unique_files,
)

NAME = "safetensors"


@functools.cache
def _spec() -> dict[str, Any]:
    return rules.load("weight-formats.yaml")["safetensors"]


@dataclass
class Tensor:
    name: str
    dtype: str
    shape: list[int]
    begin: int
    end: int


@dataclass
class Header:
    header_len: int                 # bytes of JSON after the 8-byte length
    data_len: int                   # bytes of the data section
    metadata: dict[str, Any]
    tensors: list[Tensor]
    duplicates: list[str]
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (rule, location, evidence)

    @property
    def data_start(self) -> int:
        return 8 + self.header_len


def read_header(path: str, size: int, limits: Limits) -> Header:
    """Parse and validate the header of one file. Raises FormatProblem when nothing can be verified."""
    if size < 8:
        raise FormatProblem("SAFETENSORS-UNPARSEABLE", "byte 0", f"file is {size} bytes; the 8-byte header length is missing")
    with open(path, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        if header_len > limits.max_header_bytes:
            raise FormatProblem("SAFETENSORS-LIMIT", "byte 0",
                                f"header length {header_len} > limit {limits.max_header_bytes}")
        if 8 + header_len > size:
            raise FormatProblem("SAFETENSORS-UNPARSEABLE", "byte 0",
                                f"header length {header_len} runs past the end of the {size}-byte file")
        raw = fh.read(header_len)
    if not raw.startswith(b"{"):
        raise FormatProblem("SAFETENSORS-UNPARSEABLE", "byte 8", f"header does not start with '{{': {raw[:40]!r}")
    try:
        text = raw.decode("utf-8")
        value, duplicates = strict_json(text, limits.max_json_depth, what="header")
    except DepthError as exc:
        raise FormatProblem("SAFETENSORS-LIMIT", "byte 8", str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatProblem("SAFETENSORS-UNPARSEABLE", "byte 8", f"header is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FormatProblem("SAFETENSORS-UNPARSEABLE", "byte 8", f"header is a JSON {type(value).__name__}, not an object")
    if len(value) > _spec()["max_tensors"]:
        raise FormatProblem("SAFETENSORS-LIMIT", "byte 8", f"{len(value)} header entries > {_spec()['max_tensors']}")
    header = Header(header_len=header_len, data_len=size - 8 - header_len, metadata={}, tensors=[],
                    duplicates=duplicates)
    for name, entry in value.items():
        if name == "__metadata__":
            _read_metadata(header, entry)
        else:
            _read_tensor(header, name, entry)
    return header


def _read_metadata(header: Header, entry: Any) -> None:
    if not isinstance(entry, dict):
        header.problems.append(("SAFETENSORS-UNPARSEABLE", "header __metadata__",
                                f"__metadata__ is a {type(entry).__name__}, the format requires string->string"))
        return
    for key, value in entry.items():
        if not isinstance(value, str):
            header.problems.append(("SAFETENSORS-UNPARSEABLE", f"header __metadata__ {key!r}",
                                    f"value is a {type(value).__name__}, the format requires a string"))
    header.metadata = entry


def _read_tensor(header: Header, name: str, entry: Any) -> None:
    where = f"header tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        header.problems.append(("SAFETENSORS-UNPARSEABLE", where, f"entry lacks dtype/shape/data_offsets: {str(entry)[:200]}"))
        return
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
        header.problems.append(("SAFETENSORS-UNPARSEABLE", where, f"data_offsets {offsets!r} is not [begin, end]"))
        return
    tensor = Tensor(name, str(dtype), shape if isinstance(shape, list) else [], offsets[0], offsets[1])
    header.tensors.append(tensor)
    bits = _spec()["dtypes"].get(dtype) if isinstance(dtype, str) else None
    if bits is None:
        header.problems.append(("SAFETENSORS-BAD-DTYPE", where, f"dtype {dtype!r} is not a safetensors dtype"))
        return
    if not (isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        header.problems.append(("SAFETENSORS-BAD-DTYPE", where, f"shape {shape!r} is not a list of non-negative integers"))
        return
    total_bits = math.prod(shape) * bits
    expected = total_bits // 8
    if total_bits % 8 or offsets[1] - offsets[0] != expected:
        header.problems.append(("SAFETENSORS-SIZE-MISMATCH", where,
                                f"{dtype} {shape} needs {total_bits / 8:g} bytes, data_offsets {offsets} "
                                f"span {offsets[1] - offsets[0]}"))


def layout_problems(header: Header) -> Iterator[tuple[str, str, str]]:
    """Ranges in bounds, non-overlapping, and covering the data section with no gap or trailing bytes."""
    start = header.data_start
    cursor, previous = 0, ""
    for t in sorted(header.tensors, key=lambda t: (t.begin, t.end)):
        where = f"header tensor {t.name!r}"
        if t.end < t.begin or t.end > header.data_len:
            yield ("SAFETENSORS-OUT-OF-BOUNDS", where,
                   f"data_offsets [{t.begin}, {t.end}] (file bytes {start + t.begin}-{start + t.end}) "
                   f"outside the {header.data_len}-byte data section")
            continue
        if t.begin < cursor:
            yield ("SAFETENSORS-OVERLAP", where,
                   f"bytes {start + t.begin}-{start + min(cursor, t.end)} also belong to tensor {previous!r}")
        elif t.begin > cursor:
            yield ("SAFETENSORS-GAP", f"bytes {start + cursor}-{start + t.begin}",
                   f"{t.begin - cursor} bytes before tensor {t.name!r} belong to no tensor")
        if t.end >= cursor:
            cursor, previous = t.end, t.name
    if cursor < header.data_len:
        yield ("SAFETENSORS-TRAILING-DATA", f"bytes {start + cursor}-{start + header.data_len}",
               f"{header.data_len - cursor} bytes after the last tensor")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    for rec in unique_files(ctx.files_of("safetensors"), ctx.files_named(".safetensors")):
        yield from _scan_file(ctx, rec)


def _scan_file(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    path = str(ctx.path(rec))
    try:
        header = read_header(path, rec.size, ctx.options.limits)
    except FormatProblem as p:
        yield rules.finding(p.rule, file=rec.path, location=p.location, evidence=p.evidence, scanner=NAME)
        return
    except OSError as exc:
        yield rules.finding("SAFETENSORS-UNPARSEABLE", file=rec.path, evidence=f"cannot read: {exc}", scanner=NAME)
        return
    problems = list(header.problems)
    if header.duplicates:
        problems.append(("SAFETENSORS-DUPLICATE-KEY", "header",
                         f"keys repeated: {', '.join(sorted(set(header.duplicates))[:20])}"))
    problems.extend(layout_problems(header))
    for rule, location, evidence in problems:
        yield rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME)
    yield from metadata_findings("SAFETENSORS", rec.path, header.metadata, NAME)
    yield from _cross_check(rec, path, header, clean=not problems)
    ctx.facts.add_file(SafetensorsFacts, rec.path, {
        "metadata": {k: clip(v) for k, v in header.metadata.items()},
        "tensors": len(header.tensors),
        "dtypes": sorted({t.dtype for t in header.tensors}),
        "header_bytes": header.header_len,
        "tensor_bytes": sum(max(0, t.end - t.begin) for t in header.tensors),
    })


def _cross_check(rec: Any, path: str, header: Header, *, clean: bool) -> Iterator[Finding]:
    """The reference library must agree with us: same tensors, and it must open what we call clean."""
    try:
        import safetensors as library
    except ImportError:
        return
    try:
        names = _library_tensor_names(library, path)
    except Exception as exc:  # noqa: BLE001 - any refusal by the library is the signal
        if clean:
            yield rules.finding("SAFETENSORS-LIBRARY-DISAGREES", file=rec.path, location="header",
                                evidence=f"safetensors library refused the file: {exc}", scanner=NAME)
        return
    ours = {t.name for t in header.tensors}
    if names != ours:
        only_lib, only_ours = sorted(names - ours)[:10], sorted(ours - names)[:10]
        yield rules.finding("SAFETENSORS-LIBRARY-DISAGREES", file=rec.path, location="header",
                            evidence=f"library-only tensors {only_lib}, auditor-only tensors {only_ours}",
                            scanner=NAME)


LIBRARY_BYTES_LIMIT = 16 * 1024 * 1024   # below this the library parses the file from bytes


def _library_tensor_names(library: Any, path: str) -> set[str]:
    """The tensor names the safetensors library reads. `safe_open` imports numpy (~0.1 s, more than a small
    file's whole audit), `deserialize` does not: small files are read once and given to it as bytes."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size <= LIBRARY_BYTES_LIMIT:
            return {name for name, _tensor in library.deserialize(fh.read(LIBRARY_BYTES_LIMIT + 1))}
    with library.safe_open(path, framework="numpy") as f:
        return set(f.keys())
