"""Containers that carry pickles: zip (PyTorch, TorchScript, torch.package, npz), 7z, tar and the
compressed single streams. Every member a loader would unpickle is analysed as a pickle
(auditor/scanners/pickle_streams.py); Python sources inside a model container (TorchScript code/,
torch.package modules) are analysed as code with auditor.parsers.pyast, never as pickles. Every read
is bounded by the file's and the audit's decompression budgets; a bound hit is a finding.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from auditor import rules
from auditor.inventory import HEAD, UNKNOWN_SIZE, detect
from auditor.model import Severity
from auditor.parsers import archive as arc
from auditor.parsers.picklevm import looks_like_pickle
from auditor.scanners.pickle_allowlist import CONTAINER_FORMATS, PICKLE_FORMATS, globals_policy
from auditor.scanners.pickle_streams import (
    FileState,
    descr_has_object,
    is_pickle_stream,
    npy_header,
    scan_npy,
    scan_pickle_bytes,
)

_STORAGE_MEMBER = re.compile(r"(^|/)data/([^/]+)$")
STREAM_FORMATS = ("gzip", "bz2", "xz", "zstd", "lz4", "zlib")


def _anomaly_table() -> dict[str, Any]:
    global _TABLE
    if _TABLE is None:
        _TABLE = rules.load("archive-anomalies.yaml")
    return _TABLE


_TABLE: dict[str, Any] | None = None


def _member_where(where: str, name: str) -> str:
    return f"{where} > {name}" if where else f"member {name}"


def scan_container_source(source: Path | bytes, fmt: str, where: str, state: FileState, depth: int) -> None:
    try:
        archive = arc.open_archive(source, fmt, state.limits)
    except ImportError as exc:
        state.add("ARCHIVE-UNPARSEABLE", where or "byte 0", f"{fmt}: {exc}; install the package to verify it")
        return
    with archive:
        scan_archive(archive, where, state, depth)


def report_anomalies(anomalies: list[arc.Anomaly], kind: str, where: str, state: FileState,
                     member: str = "") -> None:
    table = _anomaly_table()
    for anomaly in anomalies:
        name = anomaly.member or member
        loc = _member_where(where, name) if name else (where or "archive")
        if anomaly.offset >= 0:
            loc += f" @ byte {anomaly.offset}"
        state.add(table["anomaly_rules"].get(anomaly.kind, "ARCHIVE-UNPARSEABLE"), loc, f"{kind}: {anomaly.detail}")
        if anomaly.kind in table["engine_unsafe"]:
            state.unbounded.append(f"{anomaly.kind}: {anomaly.detail}")


def scan_archive(archive: arc.Archive, where: str, state: FileState, depth: int) -> None:
    report_anomalies(archive.anomalies, archive.kind, where, state)
    members = archive.members
    names = [m.name for m in members]
    code_names = _program_kind(names, where, state)
    code_members = [m for m in members if m.name in code_names]
    if code_members:
        _scan_code_members(code_members, where, state)
    # Pickles first, so the storages they reference are known before the other members are looked at.
    ordered = sorted((m for m in members if m.name not in code_names),
                     key=lambda m: (not m.name.endswith(".pkl"), m.offset))
    storage_keys: set[str] = set()
    for member in ordered:
        try:
            state.own.spend("members")
        except Exception:  # noqa: BLE001 - BudgetExceeded: the rest of the members is not read
            state.add("ARCHIVE-LIMIT", where or "archive", f"more than {state.own.caps['members']} members "
                      "in this file's containers; the rest was not analysed")
            state.unbounded.append("member budget")
            return
        _scan_member(member, where, state, depth, storage_keys)


def _program_kind(names: list[str], where: str, state: FileState) -> set[str]:
    """The Python sources of a TorchScript program or a torch.package archive (analysed as code), and
    the finding that says which of the two the zip is."""
    sources = {n for n in names if n.endswith(".py")}
    torchscript, package = _is_torchscript(names), _is_torch_package(names)
    shown = sorted(sources)
    listing = f"{len(shown)} Python file(s) ({', '.join(shown[:5])}{'...' if len(shown) > 5 else ''})"
    if torchscript:
        state.kind = "torchscript"
        state.add("TORCHSCRIPT-ARCHIVE", where or "archive", f"TorchScript program: {listing}; torch.jit.load "
                  "runs them whatever weights_only says")
    elif package:
        state.kind = "torch-package"
        state.add("TORCH-PACKAGE-ARCHIVE", where or "archive", f"torch.package archive: {listing}; "
                  "PackageImporter imports and runs them")
    elif any(n == "data.pkl" or n.endswith("/data.pkl") for n in names) and state.kind == "zip":
        state.kind = "pytorch-zip"
    return sources


def _is_torchscript(names: list[str]) -> bool:
    """A code/ folder next to the pickles torch.jit.load reads (a bare code/ folder is not one)."""
    roots = {n.rsplit("/", 1)[0] if "/" in n else "" for n in names if n.endswith(("constants.pkl", "data.pkl"))}
    prefixes = tuple(f"{r}/code/" if r else "code/" for r in roots)
    return bool(prefixes) and any(n.startswith(prefixes) for n in names)


def _is_torch_package(names: list[str]) -> bool:
    return any(n == ".data/version" or n.endswith("/.data/version") for n in names)


_OPS_CALL = re.compile(r"\bops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_SETSTATE = re.compile(r"^(\s*)def __setstate__\s*\(", re.M)
MAX_CODE_BYTES = 16 * 1024 * 1024


def _scan_code_members(code_members: list[arc.Member], where: str, state: FileState) -> None:
    """Python in a model container: custom operators, torch file primitives, and the full code analysis."""
    from auditor.scanners import code as code_scanner
    builtin = set(globals_policy().torchscript_ops)
    budget = MAX_CODE_BYTES
    for member in code_members:
        loc = _member_where(where, member.name)
        try:
            raw, truncated = member.read(min(budget, state.read_limit()))
        except Exception as exc:  # noqa: BLE001 - decompressors raise many types on hostile input
            state.add("ARCHIVE-UNPARSEABLE", loc, f"{type(exc).__name__}: {exc}")
            continue
        state.spent(len(raw))
        report_anomalies(member.problems, member.container, loc, state)
        budget -= len(raw)
        text = raw.decode("utf-8", "replace")
        custom = sorted({f"{ns}.{op}" for ns, op in _OPS_CALL.findall(text) if ns not in builtin})
        if custom:
            state.add("TORCHSCRIPT-CUSTOM-OP", loc, f"custom operators {', '.join(custom[:10])}: native code the "
                      "loading process must provide (torch.ops.load_library)")
        _file_primitives(text, loc, state)
        found, _ = code_scanner.findings_for_source(text, state.rec.path, scanner="pickle",
                                                    location_prefix=f"{loc}, ")
        for finding in found:
            if state.room(finding.rule, finding.severity):
                state.findings.append(finding)
        if truncated or budget <= 0:
            state.add("ARCHIVE-LIMIT", loc, f"code larger than {MAX_CODE_BYTES} bytes; the rest was not read")
            return


def _file_primitives(text: str, loc: str, state: FileState) -> None:
    """torch.from_file / torch.load / ... in container code; inside __setstate__ they run at load time."""
    setstate = [(m.start(), len(m.group(1))) for m in _SETSTATE.finditer(text)]
    for entry in _anomaly_table()["torch_file_primitives"]:
        at = text.find(entry["match"])
        if at < 0:
            continue
        line = text.count("\n", 0, at) + 1
        in_setstate = any(start < at and _same_block(text, start, at, indent) for start, indent in setstate)
        when = "in __setstate__, which runs when the file is loaded" if in_setstate else "when the code runs"
        state.add("TORCHSCRIPT-FILE-ACCESS", f"{loc}, line {line}", f"{entry['match']}: {entry['why']}; {when}",
                  severity=Severity.CRITICAL if in_setstate else None)


def _same_block(text: str, start: int, at: int, indent: int) -> bool:
    """Whether offset `at` lies in the function defined at `start` (no later line is indented <= `indent`)."""
    for line in text[start:at].split("\n")[1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            return False
    return True


def _scan_member(member: arc.Member, where: str, state: FileState, depth: int, storage_keys: set[str]) -> None:
    loc = _member_where(where, member.name)
    storage = _STORAGE_MEMBER.search(member.name)
    if storage and storage.group(2) in storage_keys:
        return      # raw tensor bytes, never unpickled: not read
    try:
        head = member.head(4096)
    except Exception as exc:  # noqa: BLE001 - decompressors raise many types on hostile input
        state.add("ARCHIVE-UNPARSEABLE", loc, f"{type(exc).__name__}: {exc}")
        return
    if not head:
        report_anomalies(member.problems, member.container, loc, state)   # e.g. a stream cut before its first block
        return
    fmt = detect(head, max(member.size, len(head)) if member.size >= 0 else UNKNOWN_SIZE)
    name = member.name.lower()
    pickle_named = name.endswith(globals_policy().extensions) or name.endswith((".pkl", ".debug_pkl"))
    if storage and fmt != "pickle" and not looks_like_pickle(head[:10]):
        return      # an unreferenced data/<n> member that is not a pickle: raw bytes
    if not pickle_named and fmt not in PICKLE_FORMATS:
        if looks_like_pickle(head[:10]):
            _speculative_pickle(member, loc, state, depth, storage_keys)
        return
    if fmt == "numpy" and not _npy_has_object(member, head, state):
        return
    if depth + 1 > state.limits.max_nesting and fmt in CONTAINER_FORMATS:
        state.add("ARCHIVE-LIMIT", loc, f"containers nested deeper than {state.limits.max_nesting}")
        return
    _read_and_scan(member, fmt, loc, state, depth, storage_keys)


def _read_and_scan(member: arc.Member, fmt: str, loc: str, state: FileState, depth: int,
                   storage_keys: set[str]) -> None:
    read = _read_member(member, loc, state)
    if read is None:
        return
    data, cut = read
    if fmt not in PICKLE_FORMATS and not is_pickle_stream(data, state, UNKNOWN_SIZE if cut else 0):
        state.add("PICKLE-NOT-PICKLE", loc, f"content is {fmt}, not a pickle; no pickle loader can run code from it")
        return
    scan_blob(data, fmt, loc, state, depth + 1, storage_keys)


def _npy_has_object(member: arc.Member, head: bytes, state: FileState) -> bool:
    """Only an object array carries a pickle: numeric arrays are not read past their header."""
    if len(head) < 12:
        return True
    needed = 12 + int.from_bytes(head[8:12] if head[6] >= 2 else head[8:10], "little")
    parsed = npy_header(member.head(min(needed, 1 << 20)) if needed > len(head) else head,
                        state.limits.max_header_bytes)
    return isinstance(parsed, str) or descr_has_object(parsed[0])


def _read_member(member: arc.Member, loc: str, state: FileState) -> tuple[bytes, bool] | None:
    """The member's bytes up to this file's share of the budget, and whether they were cut (reported)."""
    limit = state.read_limit()
    if limit <= 0:
        state.add("ARCHIVE-LIMIT", loc, f"{state.budget_note() or 'decompression budget spent'}; not analysed")
        state.unbounded.append("decompression budget")
        return None
    try:
        data, truncated = member.read(limit)
    except Exception as exc:  # noqa: BLE001
        state.add("ARCHIVE-UNPARSEABLE", loc, f"{type(exc).__name__}: {exc}")
        return None
    if member.method or member.container != "zip":
        state.spent(len(data))
    report_anomalies(member.problems, member.container, loc, state)
    if truncated and not member.problems:
        note = state.budget_note() or f"member larger than {limit} bytes"
        bomb = state.own.exhausted("decompressed") and not state.audit.exhausted("decompressed")
        state.add("ARCHIVE-BOMB" if bomb else "ARCHIVE-LIMIT", loc,
                  f"{note}: only the first {len(data)} bytes were analysed")
        state.unbounded.append("bomb" if bomb else "limit")
    if member.crc is not None and member.container == "zip" and not truncated and zlib.crc32(data) != member.crc:
        state.add("ARCHIVE-CRC-MISMATCH", loc, f"zip: data CRC {zlib.crc32(data):08x}, declared "
                  f"{member.crc:08x}; PyTorch does not check it")
    if member.size >= 0 and not truncated and member.container == "zip" and len(data) != member.size:
        state.add("ARCHIVE-SIZE-MISMATCH", loc, f"zip: {len(data)} bytes, declared {member.size}")
    return data, truncated


MAX_SPECULATIVE_BYTES = 16 * 1024 * 1024


def _speculative_pickle(member: arc.Member, where: str, state: FileState, depth: int,
                        storage_keys: set[str]) -> None:
    """A member that is not named like a pickle but begins like one: analysed, and reported only if a loader
    would unpickle it (picklevm.evident: ordinary text and random bytes are not)."""
    try:
        data, cut = member.read(min(MAX_SPECULATIVE_BYTES, state.read_limit()))
    except Exception:  # noqa: BLE001 - unreadable members are reported where they are read for real
        return
    state.spent(len(data))
    if is_pickle_stream(data, state, UNKNOWN_SIZE if cut else 0):
        scan_pickle_bytes(data, where, state, depth + 1, storage_keys)


def scan_blob(data: bytes, fmt: str, where: str, state: FileState, depth: int,
              storage_keys: set[str] | None = None) -> None:
    """Bytes from inside a container (or a decompressed stream), dispatched by their content."""
    if depth > state.limits.max_nesting:
        state.add("ARCHIVE-LIMIT", where, f"nesting deeper than {state.limits.max_nesting}")
        return
    if fmt == "zip":
        with arc.read_zip(data, state.limits) as archive:
            scan_archive(archive, where, state, depth)
    elif fmt in STREAM_FORMATS:
        _scan_stream(data, fmt, where, state, depth, storage_keys)
    elif fmt in ("7z", "tar"):
        scan_container_source(data, fmt, where, state, depth)
    elif fmt == "numpy":
        scan_npy(data, where, state, depth)
    elif fmt == "pickle" or is_pickle_stream(data, state):
        scan_pickle_bytes(data, where, state, depth, storage_keys)
    else:
        state.add("PICKLE-NOT-PICKLE", where or "byte 0", f"content is {fmt}, not a pickle")


def _scan_stream(data: bytes, fmt: str, where: str, state: FileState, depth: int,
                 storage_keys: set[str] | None) -> None:
    try:
        member = arc.open_archive(data, fmt, state.limits).members[0]
    except ImportError as exc:
        state.add("ARCHIVE-UNPARSEABLE", where or "byte 0", f"{fmt}: {exc}; install it to verify")
        return
    read = _read_member(member, where or f"{fmt} stream", state)
    if read is None or not read[0]:
        return
    inner, cut = read
    inner_where = f"{where} > {fmt}" if where else f"{fmt} stream"
    inner_fmt = detect(inner[:HEAD], UNKNOWN_SIZE if cut else len(inner))
    scan_blob(inner, inner_fmt, inner_where, state, depth + 1, storage_keys)
