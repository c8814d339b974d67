"""Pickle and everything that carries one: raw pickles, PyTorch zip and legacy checkpoints,
TorchScript, numpy .npy/.npz, joblib, dill, and the zip/7z/tar/gzip/bz2/xz/zstd wrappers around them.

Every pickle is read by the symbolic machine in auditor.picklevm (nothing is ever loaded) and every
global it would import is judged against the allow-list in rules/pickle-globals.yaml. Containers are
opened by auditor.archive's tolerant readers, so a member hidden by a bad CRC, flag bits or a
central directory that disagrees is still analysed, and the disagreement is reported too.
"""
from __future__ import annotations

import ast
import base64
import binascii
import mmap
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from auditor import rules
from auditor.facts import PickleFacts
from auditor.inventory import detect
from auditor.model import FileRecord, Finding, Limits, Severity
from auditor.parsers import archive as arc
from auditor.parsers.picklevm import Analysis, Bounds, Call, Obj, Ref, analyze, analyze_all, looks_like_pickle, render

NAME = "pickle"
DEFAULT_LIMITS = Limits()

CONTAINER_FORMATS = ("zip", "7z", "tar", "gzip", "bz2", "xz", "zstd", "lz4")
PICKLE_FORMATS = ("pickle", "numpy", *CONTAINER_FORMATS)
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PICKLES = 5          # magic, protocol version, sys info, the object, the storage keys
MAX_PICKLE_BYTES = 1 << 30        # a pickle member read into memory (storages are never read)
MAX_NESTED_STRING = 64 * 1024 * 1024
MAX_FINDINGS_PER_GLOBAL = 20
CALL_KINDS = ("reduce", "newobj", "newobj_ex", "obj", "inst")
_B64 = re.compile(rb"^[A-Za-z0-9+/=\s_-]+$")
_STORAGE_MEMBER = re.compile(r"(^|/)data/([^/]+)$")


# --- the allow-list ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GlobalVerdict:
    status: str                   # safe | dangerous | unknown
    severity: Severity = Severity.INFO
    why: str = ""
    match: str = ""


class GlobalsPolicy:
    def __init__(self, data: dict[str, Any]) -> None:
        self.safe = set(data.get("safe") or ())
        self.safe_class_packages = tuple(data.get("safe_class_packages") or ())
        self.resolvers = set(data.get("resolvers") or ())
        self.dangerous: dict[str, tuple[Severity, str]] = {}
        for entry in data.get("dangerous") or ():
            self.dangerous[entry["match"]] = (Severity.parse(entry.get("severity", "critical")), entry.get("why", ""))
        self.extensions = tuple(s.lower() for s in data.get("pickle_extensions") or ())

    def classify(self, qualname: str) -> GlobalVerdict:
        if qualname in self.safe:      # exact names only, so a dangerous module's member is never "safe"
            return GlobalVerdict("safe")
        parts = qualname.split(".")
        best: GlobalVerdict | None = None
        for i in range(1, len(parts) + 1):
            hit = self.dangerous.get(".".join(parts[:i]))
            if hit and (best is None or hit[0] > best.severity):
                best = GlobalVerdict("dangerous", hit[0], hit[1], ".".join(parts[:i]))
        if best is not None:
            return best
        if any(p.startswith("__") for p in parts[1:]) or any(not p.isidentifier() for p in parts):
            return GlobalVerdict("dangerous", Severity.CRITICAL,
                                 "dunder or malformed name: reaches interpreter internals", qualname)
        last = parts[-1]
        for package in self.safe_class_packages:
            if qualname.startswith(package + ".") and last.lstrip("_")[:1].isupper():
                return GlobalVerdict("safe")
        return GlobalVerdict("unknown", Severity.MEDIUM)


def globals_policy() -> GlobalsPolicy:
    global _POLICY
    if _POLICY is None:
        _POLICY = GlobalsPolicy(rules.load("pickle-globals.yaml"))
    return _POLICY


_POLICY: GlobalsPolicy | None = None


# --- the scan ----------------------------------------------------------------------------------

@dataclass
class _FileState:
    rec: FileRecord
    limits: Limits
    findings: list[Finding] = field(default_factory=list)
    pickles: int = 0
    opcodes: int = 0
    globals_seen: set[str] = field(default_factory=set)
    kind: str = ""

    def add(self, rule: str, where: str, evidence: str, severity: Severity | None = None, title: str = "") -> None:
        self.findings.append(rules.finding(rule, file=self.rec.path, location=where, evidence=evidence,
                                           severity=severity, title=title, scanner=NAME))


def wants(rec: FileRecord, policy: GlobalsPolicy | None = None) -> bool:
    """Whether the pickle scanner analyses this file: by content, or by a pickle-ish extension."""
    if rec.error or rec.format in ("empty", "lfs-pointer"):
        return False
    if rec.format in PICKLE_FORMATS:
        return True
    policy = policy or globals_policy()
    name = rec.path.lower()
    return rec.extension_format in ("pickle", "pytorch") or name.endswith(policy.extensions)


def scan(ctx: Any) -> Iterator[Finding]:
    policy = globals_policy()
    facts: dict[str, Any] = {}
    for rec in ctx.files:
        if not wants(rec, policy):
            continue
        state = _FileState(rec, ctx.options.limits)
        try:
            scan_file(ctx.path(rec), rec.format, state)
        except Exception as exc:  # noqa: BLE001 - one hostile file must not stop the others; fail closed
            state.add("PICKLE-UNPARSEABLE", "", f"{type(exc).__name__}: {exc}")
        facts[rec.path] = {"kind": state.kind, "pickles": state.pickles, "opcodes": state.opcodes,
                           "globals": sorted(state.globals_seen)[:200]}
        yield from state.findings
    if facts:
        ctx.facts.publish(PickleFacts(files=facts))


def scan_path(path: Path, fmt: str = "", limits: Limits = DEFAULT_LIMITS, rel: str = "") -> list[Finding]:
    """Analyse one file outside an audit (benchmarks, tests)."""
    if not fmt:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        fmt = detect(head, path.stat().st_size)
    rec = FileRecord(path=rel or path.name, size=path.stat().st_size, sha256="", format=fmt)
    state = _FileState(rec, limits)
    scan_file(path, fmt, state)
    return state.findings


def scan_file(path: Path, fmt: str, state: _FileState) -> None:
    limits = state.limits
    if fmt == "zip":
        state.kind = "zip"
        with arc.read_zip(path, limits) as archive:
            _scan_archive(archive, "", state, 0)
    elif fmt in ("7z", "tar", "gzip", "bz2", "xz", "zstd", "lz4"):
        state.kind = fmt
        _scan_container_source(path, fmt, "", state, 0)
    elif fmt == "numpy":
        state.kind = "numpy"
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            _scan_npy(mm, "", state, 0)
    else:
        size = path.stat().st_size
        if size == 0:
            return
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            _scan_unknown_or_pickle(mm, "", state, 0)


def _scan_unknown_or_pickle(data: bytes | mmap.mmap, where: str, state: _FileState, depth: int) -> None:
    head = bytes(data[:4096])
    fmt = detect(head, len(data))
    if fmt != "pickle" and head[:1] == b"\x78" and len(head) > 1 and (head[0] * 256 + head[1]) % 31 == 0:
        fmt = "zlib"        # joblib's zlib compressor writes a bare zlib stream
    if fmt == "pickle":
        state.kind = state.kind or "pickle"
        _scan_pickle_bytes(data, where, state, depth)
    elif fmt not in PICKLE_FORMATS and fmt != "zlib" and looks_like_pickle(head[:2]) and \
            _imports_anything(data, state):
        state.kind = state.kind or "pickle"     # e.g. a protocol-0 pickle that reads as text
        _scan_pickle_bytes(data, where, state, depth)
    elif fmt in PICKLE_FORMATS or fmt == "zlib":
        _scan_blob(bytes(data), fmt, where, state, depth)
    else:
        state.add("PICKLE-NOT-PICKLE", where or "byte 0", f"content is {fmt}, not a pickle; no pickle loader "
                  "can run code from it")


def _imports_anything(data: bytes | mmap.mmap, state: _FileState) -> bool:
    """Whether bytes that merely begin like a pickle would import a global (the only way to run code)."""
    return any(a.imports or a.ext_codes for a in analyze_all(data, 0, _bounds(state.limits), max_streams=8))


# --- pickles -----------------------------------------------------------------------------------

def _bounds(limits: Limits) -> Bounds:
    return Bounds(max_opcodes=limits.max_pickle_opcodes, max_memo=limits.max_pickle_memo)


def _loc(where: str, op: int, pos: int) -> str:
    inner = f"opcode #{op} @ byte {pos}"
    return f"{where}, {inner}" if where else inner


def _scan_pickle_bytes(data: bytes | mmap.mmap, where: str, state: _FileState, depth: int,
                       storage_keys: set[str] | None = None) -> None:
    """Every pickle in a row; a legacy PyTorch file stops after its five pickles (raw storages follow)."""
    legacy = False
    for index, analysis in enumerate(analyze_all(data, 0, _bounds(state.limits))):
        if index == 0 and analysis.complete and analysis.value == LEGACY_TORCH_MAGIC:
            legacy = True
            state.kind = "pytorch-legacy"
        label = where
        if index:
            label = f"{where}, pickle #{index + 1}" if where else f"pickle #{index + 1}"
        judge(analysis, label, state, depth)
        if analysis.joblib_arrays:
            _plain_reading(data, analysis, label, state)
        if storage_keys is not None:
            storage_keys.update(_storage_keys(analysis))
        if legacy and index + 1 >= LEGACY_TORCH_PICKLES:
            break


def _plain_reading(data: bytes | mmap.mmap, joblib_view: Analysis, where: str, state: _FileState) -> None:
    """joblib.load skips the array bytes after each NumpyArrayWrapper; plain pickle.load reads them as
    opcodes. Bytes crafted to be both an array and a payload must not hide behind the joblib reading,
    so the stream is read the plain way too and any dangerous global only that reading sees is reported.
    (Unknown globals are not: random array bytes can spell a harmless-looking GLOBAL.)"""
    plain = analyze(data, joblib_view.start, replace(_bounds(state.limits), joblib=False))
    seen = {ref.pos for ref in joblib_view.imports}
    policy = globals_policy()
    for ref in plain.imports:
        if ref.pos in seen or ref.raw == "<non-string name>":
            continue
        verdict = policy.classify(ref.qualname)
        # only deny-list names: bytes that were never meant as opcodes can spell odd names by chance
        if verdict.status == "dangerous" and verdict.match in policy.dangerous:
            state.add("PICKLE-GLOBAL-DANGEROUS", _loc(where, ref.op, ref.pos),
                      f"{ref.qualname} (imported when plain pickle.load reads joblib's array bytes as opcodes); "
                      f"matches '{verdict.match}': {verdict.why}", severity=verdict.severity)


def _storage_keys(analysis: Analysis) -> set[str]:
    keys = set()
    for pid in analysis.persids:
        if isinstance(pid.args, tuple) and len(pid.args) >= 3 and pid.args[0] == "storage":
            keys.add(str(pid.args[2]))
    return keys


def judge(analysis: Analysis, where: str, state: _FileState, depth: int) -> None:
    """Findings for one analysed pickle: its imports, calls, BUILDs, nested pickles, break or limit."""
    policy = globals_policy()
    state.pickles += 1
    state.opcodes += analysis.opcodes
    first_call: dict[int, Call] = {}
    for call in analysis.calls:
        if isinstance(call.callee, Ref):
            first_call.setdefault(id(call.callee), call)
    reported: dict[str, int] = {}
    unknown: dict[str, list[Ref]] = {}
    for ref in analysis.imports:
        qualname = ref.qualname
        state.globals_seen.add(qualname)
        verdict = policy.classify(qualname)
        if verdict.status == "safe":
            continue
        if verdict.status == "unknown":
            unknown.setdefault(qualname, []).append(ref)
            continue
        reported[qualname] = reported.get(qualname, 0) + 1
        if reported[qualname] > MAX_FINDINGS_PER_GLOBAL:
            continue
        called = first_call.get(id(ref))
        evidence = f"{qualname}{render(called.args)}" if called else f"{qualname} (imported)"
        if ref.raw:
            evidence += f" [written as {ref.raw}]"
        evidence += f"; matches '{verdict.match}': {verdict.why}" if verdict.why else ""
        state.add("PICKLE-GLOBAL-DANGEROUS", _loc(where, ref.op, ref.pos), evidence, severity=verdict.severity)
    for qualname, refs in unknown.items():
        called = next((first_call[id(r)] for r in refs if id(r) in first_call), None)
        evidence = f"{qualname}{render(called.args)}" if called else f"{qualname} (imported)"
        if len(refs) > 1:
            evidence += f"; imported {len(refs)} times"
        state.add("PICKLE-GLOBAL-UNKNOWN", _loc(where, refs[0].op, refs[0].pos), evidence)
    for call in analysis.calls:
        if call.kind in CALL_KINDS and isinstance(call.callee, Obj):
            state.add("PICKLE-COMPUTED-CALL", _loc(where, call.op, call.pos),
                      f"{render(call.callee)}{render(call.args)}")
    for build in analysis.builds:
        if isinstance(build.target, Ref):
            state.add("PICKLE-BUILD-ON-GLOBAL", _loc(where, build.op, build.pos),
                      f"BUILD sets the state of {build.target.qualname} itself: {render(build.state)}")
        elif _dunder_state(build.state):
            state.add("PICKLE-BUILD-DUNDER", _loc(where, build.op, build.pos),
                      f"BUILD on {render(build.target, 120)} sets {render(build.state)}")
    for code, op, pos in analysis.ext_codes[:MAX_FINDINGS_PER_GLOBAL]:
        state.add("PICKLE-EXTENSION-CODE", _loc(where, op, pos), f"EXT code {code}: resolved from the "
                  "loading process's copyreg registry, so the global it names is unknown here")
    for nested in analysis.nested_streams:
        judge(nested, f"{where}, joblib object array" if where else "joblib object array", state, depth)
    if analysis.limit:
        state.add("PICKLE-LIMIT", _loc(where, analysis.error_op, analysis.error_pos), analysis.limit)
    elif analysis.error:
        after_call = any(c.kind in CALL_KINDS for c in analysis.calls)
        severity = Severity.HIGH if after_call else None
        evidence = analysis.error
        if after_call:
            evidence += (f" (after {len(analysis.calls)} call(s): a loader runs them before it fails, "
                         "the nullifAI technique)")
        state.add("PICKLE-UNPARSEABLE", _loc(where, analysis.error_op, analysis.error_pos), evidence,
                  severity=severity)
    _nested_pickles(analysis, where, state, depth)


def _dunder_state(state: Any) -> bool:
    dicts = [state] if isinstance(state, dict) else [s for s in state if isinstance(s, dict)] \
        if isinstance(state, tuple) else []
    return any(isinstance(k, str) and k.startswith("__") and k.endswith("__") for d in dicts for k in d)


def _nested_pickles(analysis: Analysis, where: str, state: _FileState, depth: int) -> None:
    if depth + 1 > state.limits.max_nesting:
        if analysis.strings:
            state.add("PICKLE-LIMIT", where or "byte 0", f"nested pickles deeper than {state.limits.max_nesting} "
                      "were not analysed")
        return
    for value, op, pos in analysis.strings:
        if len(value) > MAX_NESTED_STRING:
            continue
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        for how, payload in _decodings(raw):
            nested = analyze(payload, 0, _bounds(state.limits))
            if not nested.imports:
                continue
            label = f"{where + ', ' if where else ''}nested pickle ({how}) in the argument at opcode #{op} @ byte {pos}"
            state.add("PICKLE-NESTED", _loc(where, op, pos), f"a {how} pickle of {len(payload)} bytes is embedded "
                      "as a literal; it was analysed too")
            judge(nested, label, state, depth + 1)
            break


def _decodings(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """A literal that is a pickle as it is, zlib of one, base64 of either: (how, the pickle bytes)."""
    yield from _plain_or_zlib(raw, "")
    if len(raw) >= 16 and _B64.match(raw[:4096]):
        try:
            decoded = base64.b64decode(raw, altchars=b"-_" if b"-" in raw or b"_" in raw else None, validate=False)
        except (binascii.Error, ValueError):
            return
        yield from _plain_or_zlib(decoded, "base64")


def _plain_or_zlib(data: bytes, via: str) -> Iterator[tuple[str, bytes]]:
    if looks_like_pickle(data[:2]) and data[:1] in (b"\x80", b"c", b"(", b"]", b"}"):
        yield via or "raw", data
    elif data[:1] == b"\x78":
        try:
            yield f"{via}+zlib" if via else "zlib", zlib.decompressobj().decompress(data, MAX_NESTED_STRING)
        except zlib.error:
            pass


# --- numpy -------------------------------------------------------------------------------------

NPY_MAX_HEADER = 64 * 1024    # numpy itself refuses headers over 10,000 bytes (np.load max_header_size)

def npy_header(data: bytes | mmap.mmap, max_header: int) -> tuple[Any, int] | str:
    """(descr, offset of the array data) from a .npy header, or why it cannot be read."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        return "not a .npy file (bad magic)"
    major = data[6]
    if major == 1:
        header_len, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        header_len, start = int.from_bytes(data[8:12], "little"), 12
    else:
        return f"unknown .npy version {major}"
    if header_len > min(max_header, NPY_MAX_HEADER):
        return f".npy header of {header_len} bytes is over the {min(max_header, NPY_MAX_HEADER)}-byte limit"
    if start + header_len > len(data):
        return f".npy header of {header_len} bytes runs past the data"
    text = bytes(data[start:start + header_len]).decode("latin-1")
    try:
        header = ast.literal_eval(text)      # a literal dict: nothing is evaluated
        return header["descr"], start + header_len
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as exc:
        return f".npy header is not a literal dict: {type(exc).__name__}"


def _scan_npy(data: bytes | mmap.mmap, where: str, state: _FileState, depth: int) -> None:
    loc = where or "byte 0"
    parsed = npy_header(data, state.limits.max_header_bytes)
    if isinstance(parsed, str):
        state.add("PICKLE-UNPARSEABLE", loc, parsed)
        return
    descr, body = parsed
    if not _descr_has_object(descr):
        return
    state.add("PICKLE-NUMPY-OBJECT-ARRAY", loc, f"dtype {descr!r}: the array is a pickle that np.load runs only "
              "with allow_pickle=True")
    pickle_where = f"{where}, pickle @ byte {body}" if where else f"pickle @ byte {body}"
    _scan_pickle_bytes(data[body:] if isinstance(data, bytes) else bytes(data[body:]), pickle_where, state, depth)


def _descr_has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, (list, tuple)):
        return any(_descr_has_object(part) for part in descr)
    return False


# --- containers --------------------------------------------------------------------------------

_ANOMALY_RULES = {
    "no-central-directory": "ARCHIVE-NO-CENTRAL-DIRECTORY", "name-mismatch": "ARCHIVE-NAME-MISMATCH",
    "flag-bits": "ARCHIVE-FLAG-BITS", "crc-mismatch": "ARCHIVE-CRC-MISMATCH",
    "hidden-member": "ARCHIVE-HIDDEN-MEMBER", "path-traversal": "ARCHIVE-PATH-TRAVERSAL",
    "bomb": "ARCHIVE-BOMB", "size-mismatch": "ARCHIVE-SIZE-MISMATCH", "duplicate-name": "ARCHIVE-DUPLICATE-NAME",
    "overlap": "ARCHIVE-OVERLAP", "unsupported-method": "ARCHIVE-UNPARSEABLE", "truncated": "ARCHIVE-UNPARSEABLE",
    "limit": "ARCHIVE-LIMIT", "unreadable": "ARCHIVE-UNPARSEABLE", "encrypted": "ARCHIVE-FLAG-BITS",
}


def _member_where(where: str, name: str) -> str:
    return f"{where} > {name}" if where else f"member {name}"


def _scan_container_source(source: Path | bytes, fmt: str, where: str, state: _FileState, depth: int) -> None:
    try:
        archive = arc.open_archive(source, fmt, state.limits)
    except ImportError as exc:
        state.add("ARCHIVE-UNPARSEABLE", where or "byte 0", f"{fmt}: {exc}; install the package to verify it")
        return
    with archive:
        _scan_archive(archive, where, state, depth)


def _scan_archive(archive: arc.Archive, where: str, state: _FileState, depth: int) -> None:
    for anomaly in archive.anomalies:
        loc = _member_where(where, anomaly.member) if anomaly.member else (where or "archive")
        if anomaly.offset >= 0:
            loc += f" @ byte {anomaly.offset}"
        state.add(_ANOMALY_RULES.get(anomaly.kind, "ARCHIVE-UNPARSEABLE"), loc, f"{archive.kind}: {anomaly.detail}")
    members = archive.members
    names = [m.name for m in members]
    # TorchScript: a code/ folder next to the pickles torch.jit.load reads (a bare code/ folder is not one)
    pickles = {n.rsplit("/", 1)[0] if "/" in n else "" for n in names if n.endswith(("constants.pkl", "data.pkl"))}
    torchscript = [n for n in names if any(re.match(rf"{re.escape(p + '/' if p else '')}code/", n) for p in pickles)]
    if torchscript:
        state.kind = "torchscript"
        code = [n for n in names if re.search(r"(^|/)code/.*\.py$", n)]
        state.add("TORCHSCRIPT-ARCHIVE", where or "archive", f"TorchScript program: {len(code)} code file(s) "
                  f"({', '.join(code[:5])}{'...' if len(code) > 5 else ''}); torch.jit.load runs them "
                  "whatever weights_only says")
        _torchscript_custom_ops([m for m in members if m.name in code], where, state)
    elif any(n == "data.pkl" or n.endswith("/data.pkl") for n in names) and state.kind == "zip":
        state.kind = "pytorch-zip"
    # Pickles first, so the storages they reference are known before the other members are looked at.
    ordered = sorted(members, key=lambda m: (not m.name.endswith(".pkl"), m.offset))
    storage_keys: set[str] = set()
    for member in ordered:
        _scan_member(member, where, state, depth, storage_keys)


_OPS_CALL = re.compile(r"\bops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
MAX_TORCHSCRIPT_CODE = 16 * 1024 * 1024


def _torchscript_custom_ops(code_members: list[arc.Member], where: str, state: _FileState) -> None:
    """Operators outside PyTorch's own namespaces live in native libraries the loader must provide."""
    builtin = set(rules.load("pickle-globals.yaml").get("torchscript_op_namespaces") or ())
    budget = MAX_TORCHSCRIPT_CODE
    for member in code_members:
        try:
            raw, truncated = member.read(budget)
        except Exception as exc:  # noqa: BLE001 - decompressors raise many types on hostile input
            state.add("ARCHIVE-UNPARSEABLE", _member_where(where, member.name), f"{type(exc).__name__}: {exc}")
            continue
        budget -= len(raw)
        text = raw.decode("utf-8", "replace")
        custom = sorted({f"{ns}.{op}" for ns, op in _OPS_CALL.findall(text) if ns not in builtin})
        if custom:
            state.add("TORCHSCRIPT-CUSTOM-OP", _member_where(where, member.name),
                      f"custom operators {', '.join(custom[:10])}: native code the loading process must "
                      "provide (torch.ops.load_library)")
        if truncated or budget <= 0:
            state.add("ARCHIVE-LIMIT", _member_where(where, member.name),
                      f"TorchScript code larger than {MAX_TORCHSCRIPT_CODE} bytes; the rest was not read")
            return


def _scan_member(member: arc.Member, where: str, state: _FileState, depth: int, storage_keys: set[str]) -> None:
    loc = _member_where(where, member.name)
    storage = _STORAGE_MEMBER.search(member.name)
    if storage and storage.group(2) in storage_keys:
        return      # raw tensor bytes, never unpickled: not read
    try:
        head = member.head(4096)
    except Exception as exc:  # noqa: BLE001 - decompressors raise many types on hostile input
        state.add("ARCHIVE-UNPARSEABLE", loc, f"{type(exc).__name__}: {exc}")
        return
    size_hint = member.size if member.size >= 0 else len(head)
    fmt = detect(head, max(size_hint, len(head))) if head else "empty"
    name = member.name.lower()
    pickle_named = name.endswith(globals_policy().extensions) or name.endswith((".pkl", ".debug_pkl"))
    if storage and fmt != "pickle":
        return      # an unreferenced data/<n> member that is not a pickle: raw bytes
    if fmt == "text" and not pickle_named and looks_like_pickle(head[:2]):
        _speculative_pickle(member, loc, state, depth, storage_keys)
        return
    if fmt not in PICKLE_FORMATS and not pickle_named and not (fmt == "unknown" and looks_like_pickle(head[:2])):
        return
    if fmt == "numpy" and len(head) >= 12:
        # Only an object array carries a pickle: numeric arrays are not read past their header.
        needed = 12 + int.from_bytes(head[8:12] if head[6] >= 2 else head[8:10], "little")
        parsed = npy_header(member.head(min(needed, 1 << 20)) if needed > len(head) else head,
                            state.limits.max_header_bytes)
        if not isinstance(parsed, str) and not _descr_has_object(parsed[0]):
            return
    elif fmt not in PICKLE_FORMATS and not looks_like_pickle(head[:2]):
        state.add("PICKLE-NOT-PICKLE", loc, f"content is {fmt}, not a pickle; no pickle loader can run code from it")
        return
    if depth + 1 > state.limits.max_nesting and fmt in CONTAINER_FORMATS:
        state.add("ARCHIVE-LIMIT", loc, f"containers nested deeper than {state.limits.max_nesting}")
        return
    limit = min(MAX_PICKLE_BYTES, state.limits.max_decompressed_bytes)
    try:
        data, truncated = member.read(limit)
    except Exception as exc:  # noqa: BLE001
        state.add("ARCHIVE-UNPARSEABLE", loc, f"{type(exc).__name__}: {exc}")
        return
    if truncated:
        state.add("ARCHIVE-LIMIT", loc, f"member larger than {limit} bytes: only the first {limit} were analysed")
    if member.crc is not None and member.container == "zip" and not truncated and \
            zlib.crc32(data) != member.crc:
        state.add("ARCHIVE-CRC-MISMATCH", loc, f"zip: data CRC {zlib.crc32(data):08x}, declared "
                  f"{member.crc:08x}; PyTorch does not check it")
    if member.size >= 0 and not truncated and member.container == "zip" and len(data) != member.size:
        state.add("ARCHIVE-SIZE-MISMATCH", loc, f"zip: {len(data)} bytes, declared {member.size}")
    if fmt == "empty" or not data:
        return
    _scan_blob(data, fmt, loc, state, depth + 1, storage_keys)


MAX_SPECULATIVE_BYTES = 16 * 1024 * 1024


def _speculative_pickle(member: arc.Member, where: str, state: _FileState, depth: int,
                        storage_keys: set[str]) -> None:
    """A text member that could be a protocol-0 pickle: analysed, and reported only if it imports something
    (a loader that unpickles it by name would run it; ordinary text imports nothing)."""
    try:
        data, _ = member.read(MAX_SPECULATIVE_BYTES)
    except Exception:  # noqa: BLE001 - unreadable members are reported where they are read for real
        return
    if _imports_anything(data, state):
        _scan_pickle_bytes(data, where, state, depth + 1, storage_keys)


def _scan_blob(data: bytes, fmt: str, where: str, state: _FileState, depth: int,
               storage_keys: set[str] | None = None) -> None:
    """Bytes from inside a container (or a decompressed stream), dispatched by their content."""
    if depth > state.limits.max_nesting:
        state.add("ARCHIVE-LIMIT", where, f"nesting deeper than {state.limits.max_nesting}")
        return
    if fmt == "zip":
        with arc.read_zip(data, state.limits) as archive:
            _scan_archive(archive, where, state, depth)
    elif fmt in ("7z", "tar", "gzip", "bz2", "xz", "zstd", "lz4", "zlib"):
        if fmt in ("gzip", "bz2", "xz", "zstd", "lz4", "zlib"):
            try:
                inner, truncated = arc.open_archive(data, fmt, state.limits).members[0].read(
                    min(MAX_PICKLE_BYTES, state.limits.max_decompressed_bytes))
            except ImportError as exc:
                state.add("ARCHIVE-UNPARSEABLE", where or "byte 0", f"{fmt}: {exc}; install it to verify")
                return
            except Exception as exc:  # noqa: BLE001
                state.add("ARCHIVE-UNPARSEABLE", where or "byte 0", f"{fmt}: {type(exc).__name__}: {exc}")
                return
            if truncated:
                state.add("ARCHIVE-LIMIT", where or "byte 0", f"{fmt} stream expands past the limit; only the "
                          "first part was analysed")
            inner_where = f"{where} > {fmt}" if where else f"{fmt} stream"
            _scan_blob(inner, detect(inner[:4096], len(inner)), inner_where, state, depth + 1, storage_keys)
        else:
            _scan_container_source(data, fmt, where, state, depth)
    elif fmt == "numpy":
        _scan_npy(data, where, state, depth)
    elif fmt == "pickle" or looks_like_pickle(data[:2]):
        _scan_pickle_bytes(data, where, state, depth, storage_keys)
    else:
        state.add("PICKLE-NOT-PICKLE", where or "byte 0", f"content is {fmt}, not a pickle")


def is_pickle_name(rec: FileRecord) -> bool:
    return PurePosixPath(rec.path).suffix.lower() in globals_policy().extensions
