"""Pickle and everything that carries one: raw pickles, PyTorch zip and legacy checkpoints,
TorchScript, torch.package, numpy .npy/.npz, joblib, dill, and the zip/7z/tar/gzip/bz2/xz/zstd
wrappers around them.

Every pickle is read by the symbolic machine in auditor.parsers.picklevm (nothing is ever loaded)
and every global it would import is judged against the allow-list in rules/pickle-globals.yaml
(auditor/scanners/pickle_streams.py). Containers are opened by auditor.parsers.archive's tolerant
readers (auditor/scanners/pickle_containers.py), so a member hidden by a bad CRC, flag bits or a
central directory that disagrees is still analysed, and the disagreement is reported too. One
budget per audit bounds the bytes decompressed and the opcodes run over all files; each file has
its own share too (its size times the compression-ratio limit).
"""
from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.facts import PickleFacts
from auditor.inventory import detect
from auditor.model import FileRecord, Finding, Limits
from auditor.parsers import relpath
from auditor.parsers.budget import Budget
from auditor.parsers.pickle_start import FRAME, PROTO, looks_like_pickle
from auditor.scanners.pickle_allowlist import NAME, PICKLE_FORMATS, GlobalsPolicy, globals_policy

if TYPE_CHECKING:   # the analysis (and the pickle VM under it) is imported once a file is wanted
    from auditor.scanners.pickle_streams import FileState

__all__ = ["NAME", "scan", "scan_path", "wants"]
DEFAULT_LIMITS = Limits()
AUDIT_OPCODE_FACTOR = 10          # the audit's opcode budget: this many files at the per-file limit
_BINARY_FORMATS = ("unknown", "protobuf", "sentencepiece")


def audit_budget(limits: Limits) -> Budget:
    return Budget(decompressed=limits.max_decompressed_bytes,
                  opcodes=limits.max_pickle_opcodes * AUDIT_OPCODE_FACTOR)


def wants(rec: FileRecord, policy: GlobalsPolicy | None = None, root: Path | None = None) -> bool:
    """Whether the pickle scanner analyses this file: by content, or by a pickle-ish extension. A binary
    file of no known format that begins with PROTO or FRAME is read too, whatever its name."""
    if rec.error or rec.format in ("empty", "lfs-pointer"):
        return False
    if rec.format in PICKLE_FORMATS:
        return True
    policy = policy or globals_policy()
    name = rec.path.lower()
    if rec.extension_format in ("pickle", "pytorch") or name.endswith(policy.extensions):
        return True
    if root is not None and rec.format in _BINARY_FORMATS:
        try:
            with open(root / rec.path, "rb") as fh:
                head = fh.read(10)
        except OSError:
            return False     # unreadable here: the inventory reports it
        return head[:1] in (bytes([FRAME]), bytes([PROTO])) and looks_like_pickle(head)
    return False


def scan(ctx: Any) -> Iterator[Finding]:
    policy = globals_policy()
    facts: dict[str, Any] = {}
    budget = audit_budget(ctx.options.limits)
    records = [rec for rec in ctx.files if wants(rec, policy, ctx.root)]
    if not records:
        return
    from auditor.scanners.pickle_streams import FileState

    def scan_one(rec: FileRecord) -> list[Finding]:
        state = FileState(rec, ctx.options.limits, budget)
        try:
            scan_file(ctx.path(rec), rec.format, state)
        except Exception as exc:  # noqa: BLE001 - fail closed with what was found before the failure
            state.add("PICKLE-UNPARSEABLE", "", f"{type(exc).__name__}: {exc}", severity=None)
        facts[rec.path] = {"kind": state.kind, "pickles": state.pickles, "opcodes": state.opcodes,
                           "globals": sorted(state.globals_seen)[:200], "unbounded": state.unbounded[:20]}
        return state.finish()

    yield from ctx.per_file(records, scan_one, NAME)
    if facts:
        ctx.facts.publish(PickleFacts(files=facts))


def scan_path(path: Path, fmt: str = "", limits: Limits = DEFAULT_LIMITS, rel: str = "",
              budget: Budget | None = None) -> list[Finding]:
    """Analyse one file outside an audit (benchmarks, tests, the fuzzer)."""
    if not fmt:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        fmt = detect(head, path.stat().st_size)
    from auditor.scanners.pickle_streams import FileState

    rec = FileRecord(path=rel or path.name, size=path.stat().st_size, sha256="", format=fmt)
    state = FileState(rec, limits, budget or audit_budget(limits))
    scan_file(path, fmt, state)
    return state.finish()


def scan_file(path: Path, fmt: str, state: FileState) -> None:
    # The container readers are imported for containers only: most repos have none.
    if fmt == "zip":
        from auditor.parsers import archive as arc
        from auditor.scanners.pickle_containers import scan_archive

        state.kind = "zip"
        with arc.read_zip(path, state.limits) as archive:
            scan_archive(archive, "", state, 0)
    elif fmt in ("7z", "tar", "gzip", "bz2", "xz", "zstd", "lz4"):
        from auditor.scanners.pickle_containers import scan_container_source

        state.kind = fmt
        scan_container_source(path, fmt, "", state, 0)
    elif path.stat().st_size:
        from auditor.scanners.pickle_streams import scan_npy

        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if fmt == "numpy":
                state.kind = "numpy"
                scan_npy(mm, "", state, 0)
            else:
                _scan_unknown_or_pickle(mm, state)


def _scan_unknown_or_pickle(data: mmap.mmap, state: FileState) -> None:
    from auditor.scanners.pickle_streams import is_pickle_stream, scan_pickle_bytes

    head = bytes(data[:4096])
    fmt = detect(head, len(data))
    if fmt != "pickle" and head[:1] == b"\x78" and len(head) > 1 and (head[0] * 256 + head[1]) % 31 == 0:
        fmt = "zlib"        # joblib's zlib compressor writes a bare zlib stream
    if fmt == "pickle" or (fmt not in PICKLE_FORMATS and fmt != "zlib" and is_pickle_stream(data, state)):
        state.kind = state.kind or "pickle"     # FRAME first, no PROTO, protocol-0 text: all pickles
        scan_pickle_bytes(data, "", state, 0)
    elif fmt in PICKLE_FORMATS or fmt == "zlib":
        from auditor.scanners.pickle_containers import scan_blob

        scan_blob(bytes(data), fmt, "", state, 0)
    else:
        state.add("PICKLE-NOT-PICKLE", "byte 0", f"content is {fmt}, not a pickle; no pickle loader "
                  "can run code from it")


def is_pickle_name(rec: FileRecord) -> bool:
    return relpath.suffix(rec.path).lower() in globals_policy().extensions
