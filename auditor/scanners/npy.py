"""numpy `.npy` files and the `.npy` members of `.npz` archives: the header's shape x dtype must match the
bytes that follow it. A header that declares far more than the file holds makes `np.load` allocate for a
lie (a 1 TiB shape over 64 bytes); fewer declared bytes leave room for a hidden payload. Object arrays
(pickled bodies) are the pickle scanner's; this scanner only checks the arithmetic."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import unique_files

NAME = "npy"
MAX_HEADER = 65536          # numpy itself refuses headers over 10,000 bytes unless told otherwise
HEAD_BYTES = MAX_HEADER + 12


def parse_header(head: bytes) -> tuple[dict[str, Any], int] | None:
    """(header dict, offset of the data) of a .npy prefix, or None when it is not a readable header."""
    if len(head) < 10 or head[:6] != b"\x93NUMPY" or head[6] not in (1, 2, 3):
        return None
    size_bytes = 2 if head[6] == 1 else 4
    header_len = int.from_bytes(head[8:8 + size_bytes], "little")
    start = 8 + size_bytes
    if header_len > MAX_HEADER or start + header_len > len(head):
        return None
    import ast  # here, not at the top: its import is ~3% of a scan that has no .npy file
    try:
        header = ast.literal_eval(head[start:start + header_len].decode("latin-1"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return (header, start + header_len) if isinstance(header, dict) else None


def expected_bytes(header: dict[str, Any]) -> int | None:
    """shape x itemsize, or None for object arrays and headers numpy would not accept."""
    import numpy as np

    shape = header.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return None
    try:
        dtype = np.dtype(header.get("descr"))
    except (TypeError, ValueError, SyntaxError):
        return None
    if dtype.hasobject:
        return None
    return math.prod(shape) * dtype.itemsize


def scan(ctx: ScanContext) -> Iterator[Finding]:
    yield from ctx.per_file(unique_files(ctx.files_of("numpy"), ctx.files_named(".npy")),
                            lambda rec: _scan_npy(ctx, rec), NAME)
    yield from ctx.per_file([r for r in ctx.files_named(".npz") if r.format == "zip"],
                            lambda rec: _scan_npz(ctx, rec), NAME)


def _scan_npy(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    with open(ctx.fspath(rec), "rb") as fh:
        head = fh.read(HEAD_BYTES)
    yield from _check(rec.path, "", head, rec.size)


def _scan_npz(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    import zipfile  # for .npz archives only

    try:
        with zipfile.ZipFile(ctx.path(rec)) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if len(members) > ctx.options.limits.max_archive_members:
                yield rules.finding("NUMPY-LIMIT", file=rec.path, scanner=NAME,
                                    evidence=f"{len(members)} .npy members; headers not checked")
                return
            for info in members:
                with zf.open(info) as fh:
                    head = fh.read(HEAD_BYTES)
                yield from _check(rec.path, f"member {info.filename}", head, info.file_size)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        return      # an unreadable zip is the archive scanners' finding


def _check(file: str, where: str, head: bytes, size: int) -> Iterator[Finding]:
    parsed = parse_header(head)
    if parsed is None:
        return      # not a readable header: the pickle scanner reports .npy files it cannot read
    header, data_start = parsed
    expected = expected_bytes(header)
    if expected is None:
        return
    actual = size - data_start
    location = f"{where}: header" if where else "header"
    summary = f"shape {header.get('shape')} of {header.get('descr')!r} = {expected} bytes"
    if expected > actual:
        yield rules.finding("NUMPY-HEADER-MISMATCH", file=file, location=location, scanner=NAME,
                            evidence=f"{summary}, the data holds {actual}")
    elif expected < actual:
        yield rules.finding("NUMPY-TRAILING-DATA", file=file, location=f"{where + ': ' if where else ''}bytes "
                            f"{data_start + expected}-{size}", scanner=NAME,
                            evidence=f"{summary}; {actual - expected} bytes follow the array")
