"""Pickle streams: the allow-list verdict on each global, the findings of one analysed pickle, nested
pickles in literals, joblib's two readings, and the .npy object body. Shared by every container path
(auditor/scanners/pickle_containers.py) and the scanner entry (auditor/scanners/pickle.py).
"""
from __future__ import annotations

import ast
import base64
import binascii
import functools
import mmap
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from auditor import rules
from auditor.model import FileRecord, Finding, Limits, Severity
from auditor.parsers.budget import Budget
from auditor.parsers.decompress import MIN_BOMB_BYTES
from auditor.parsers.pickle_values import NON_STRING_NAME
from auditor.parsers.picklevm import (
    Analysis,
    Bounds,
    Call,
    Obj,
    Ref,
    analyze,
    analyze_all,
    evident,
    looks_like_pickle,
    render,
)
from auditor.record import field, record, replace
from auditor.scanners.pickle_allowlist import NAME, globals_policy

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PICKLES = 5          # magic, protocol version, sys info, the object, the storage keys
MAX_PICKLE_BYTES = 1 << 30        # a pickle member read into memory (storages are never read)
MAX_NESTED_STRING = 64 * 1024 * 1024
MAX_FINDINGS_PER_GLOBAL = 20
MAX_FINDINGS_PER_FILE = 500       # past this, one PICKLE-FINDINGS-CAPPED summary counts the rest
CALL_KINDS = ("reduce", "newobj", "newobj_ex", "obj", "inst")
_B64 = re.compile(rb"^[A-Za-z0-9+/=\s_-]+$")


# --- one file's state ---------------------------------------------------------------------------

@record
class FileState:
    """What one file's analysis found, and the work it may still do (its own share and the audit's)."""
    rec: FileRecord
    limits: Limits
    audit: Budget = field(default_factory=Budget)
    findings: list[Finding] = field(default_factory=list)
    pickles: int = 0
    opcodes: int = 0
    globals_seen: set[str] = field(default_factory=set)
    kind: str = ""
    unbounded: list[str] = field(default_factory=list)   # why another engine must not read this file
    capped: dict[str, int] = field(default_factory=dict)
    capped_severity: Severity = Severity.INFO
    own: Budget = field(init=False)

    def __post_init__(self) -> None:
        # decompressed bytes of one file: at most `ratio` times its size, whatever the nesting
        share = max(MIN_BOMB_BYTES, self.rec.size * self.limits.max_compression_ratio)
        self.own = Budget(decompressed=min(share, self.limits.max_decompressed_bytes),
                          members=self.limits.max_archive_members * 10)

    def room(self, rule: str, severity: Severity | None = None) -> bool:
        """Whether one more finding fits; if not it is counted for the summary."""
        if len(self.findings) < MAX_FINDINGS_PER_FILE:
            return True
        self.capped[rule] = self.capped.get(rule, 0) + 1
        sev = severity if severity is not None else rules.catalog()[rule].severity
        self.capped_severity = max(self.capped_severity, sev)
        return False

    def add(self, rule: str, where: str, evidence: str | Callable[[], str], severity: Severity | None = None,
            title: str = "") -> None:
        """One finding; `evidence` may be a function, called only when the finding fits under the cap."""
        if self.room(rule, severity):
            if callable(evidence):
                evidence = evidence()
            self.findings.append(rules.finding(rule, file=self.rec.path, location=where, evidence=evidence,
                                               severity=severity, title=title, scanner=NAME))

    def finish(self) -> list[Finding]:
        if self.capped:
            counts = ", ".join(f"{rule} x{n}" for rule, n in sorted(self.capped.items()))
            self.findings.append(rules.finding(
                "PICKLE-FINDINGS-CAPPED", file=self.rec.path, scanner=NAME, severity=self.capped_severity,
                evidence=f"{sum(self.capped.values())} more findings not listed: {counts}"))
            self.capped = {}
        return self.findings

    def read_limit(self) -> int:
        """Bytes the next decompression may produce: the smallest of the caps that apply."""
        return max(0, min(MAX_PICKLE_BYTES, self.limits.max_decompressed_bytes, self.own.left("decompressed"),
                          self.audit.left("decompressed")))

    def spent(self, produced: int) -> None:
        self.own.spend_quietly("decompressed", produced)
        self.audit.spend_quietly("decompressed", produced)

    def budget_note(self) -> str:
        if self.audit.exhausted("decompressed"):
            return "the audit's decompression budget is spent"
        if self.own.exhausted("decompressed"):
            return (f"this file's decompression budget ({self.own.caps['decompressed']} bytes: "
                    f"{self.limits.max_compression_ratio} times its size) is spent")
        return ""


def is_pickle_stream(data: bytes | mmap.mmap, state: FileState, size: int = 0) -> bool:
    """Whether a loader would unpickle these bytes: they begin like a pickle and the first stream is
    evidently one (picklevm.evident), or some stream imports a global (the only way to run code).
    Ordinary text and random bytes do neither. SIZE: the whole length when DATA was cut short."""
    if not looks_like_pickle(bytes(data[:10])):
        return False
    for index, analysis in enumerate(analyze_all(data, 0, bounds(state), max_streams=8)):
        if (index == 0 and evident(analysis, size)) or any(ref.importable for ref in analysis.imports):
            return True
    return False


# --- pickles -----------------------------------------------------------------------------------

def bounds(state: FileState) -> Bounds:
    return Bounds(max_opcodes=state.limits.max_pickle_opcodes, max_memo=state.limits.max_pickle_memo,
                  budget=state.audit)


def loc(where: str, op: int, pos: int) -> str:
    inner = f"opcode #{op} @ byte {pos}"
    return f"{where}, {inner}" if where else inner


def scan_pickle_bytes(data: bytes | mmap.mmap, where: str, state: FileState, depth: int,
                       storage_keys: set[str] | None = None) -> None:
    """Every pickle in a row; a legacy PyTorch file stops after its five pickles (raw storages follow)."""
    legacy = False
    for index, analysis in enumerate(analyze_all(data, 0, bounds(state))):
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


def _plain_reading(data: bytes | mmap.mmap, joblib_view: Analysis, where: str, state: FileState) -> None:
    """joblib.load skips the array bytes after each NumpyArrayWrapper; plain pickle.load reads them as
    opcodes. Bytes crafted to be both an array and a payload must not hide behind the joblib reading,
    so the stream is read the plain way too and any dangerous global only that reading sees is reported.
    (Unknown globals are not: random array bytes can spell a harmless-looking GLOBAL.)"""
    plain = analyze(data, joblib_view.start, replace(bounds(state), joblib=False))
    seen = {ref.pos for ref in joblib_view.imports}
    policy = globals_policy()
    for ref in plain.imports:
        if ref.pos in seen or ref.raw == NON_STRING_NAME or not ref.importable:
            continue
        verdict = policy.classify(ref.qualname)
        # only deny-list names: bytes that were never meant as opcodes can spell odd names by chance
        if verdict.status == "dangerous" and verdict.match in policy.dangerous:
            state.add("PICKLE-GLOBAL-DANGEROUS", loc(where, ref.op, ref.pos),
                      f"{ref.qualname} (imported when plain pickle.load reads joblib's array bytes as opcodes); "
                      f"matches '{verdict.match}': {verdict.why}", severity=verdict.severity)


def _storage_keys(analysis: Analysis) -> set[str]:
    keys = set()
    for pid in analysis.persids:
        if isinstance(pid.args, tuple) and len(pid.args) >= 3 and pid.args[0] == "storage":
            key = pid.args[2]
            keys.add(key if isinstance(key, str) else render(key))
    return keys


def judge(analysis: Analysis, where: str, state: FileState, depth: int) -> None:
    """Findings for one analysed pickle: its imports, calls, BUILDs, nested pickles, break or limit."""
    state.pickles += 1
    state.opcodes += analysis.opcodes
    first_call: dict[int, Call] = {}
    for call in analysis.calls:
        if isinstance(call.callee, Ref):
            first_call.setdefault(id(call.callee), call)
    _judge_imports(analysis, where, state, first_call)
    _judge_calls_and_builds(analysis, where, state)
    for nested in analysis.nested_streams:
        judge(nested, f"{where}, joblib object array" if where else "joblib object array", state, depth)
    _judge_break(analysis, where, state)
    _nested_pickles(analysis, where, state, depth)


def _judge_imports(analysis: Analysis, where: str, state: FileState, first_call: dict[int, Call]) -> None:
    policy = globals_policy()
    reported: dict[str, int] = {}
    unknown: dict[str, list[Ref]] = {}
    for ref in analysis.imports:
        qualname = ref.qualname
        state.globals_seen.add(qualname)
        verdict = policy.classify(qualname)
        if verdict.status == "safe" or (verdict.status == "unknown" and state.kind == "torchscript"
                                        and qualname.startswith("__torch__.")):
            continue    # __torch__.*: a class of the archive's own TorchScript code (analysed as code)
        if verdict.status == "unknown":
            unknown.setdefault(qualname, []).append(ref)
            continue
        reported[qualname] = reported.get(qualname, 0) + 1
        if reported[qualname] > MAX_FINDINGS_PER_GLOBAL or not state.room("PICKLE-GLOBAL-DANGEROUS",
                                                                          verdict.severity):
            continue
        called = first_call.get(id(ref))
        evidence = f"{qualname}{render(called.args)}" if called else f"{qualname} (imported)"
        if ref.raw:
            evidence += f" [written as {ref.raw}]"
        evidence += f"; matches '{verdict.match}': {verdict.why}" if verdict.why else ""
        state.add("PICKLE-GLOBAL-DANGEROUS", loc(where, ref.op, ref.pos), evidence, severity=verdict.severity)
    for qualname, refs in unknown.items():
        called = next((first_call[id(r)] for r in refs if id(r) in first_call), None)
        evidence = f"{qualname}{render(called.args)}" if called else f"{qualname} (imported)"
        if len(refs) > 1:
            evidence += f"; imported {len(refs)} times"
        state.add("PICKLE-GLOBAL-UNKNOWN", loc(where, refs[0].op, refs[0].pos), evidence)


def _judge_calls_and_builds(analysis: Analysis, where: str, state: FileState) -> None:
    for call in analysis.calls:
        if call.kind in CALL_KINDS and isinstance(call.callee, Obj):
            state.add("PICKLE-COMPUTED-CALL", loc(where, call.op, call.pos),
                      functools.partial(_computed_evidence, call))
    for build in analysis.builds:
        if isinstance(build.target, Ref):
            state.add("PICKLE-BUILD-ON-GLOBAL", loc(where, build.op, build.pos),
                      functools.partial(_build_evidence, build, True))
        elif _dunder_state(build.state):
            state.add("PICKLE-BUILD-DUNDER", loc(where, build.op, build.pos),
                      functools.partial(_build_evidence, build, False))
    for code, op, pos in analysis.ext_codes[:MAX_FINDINGS_PER_GLOBAL]:
        state.add("PICKLE-EXTENSION-CODE", loc(where, op, pos), f"EXT code {code}: resolved from the "
                  "loading process's copyreg registry, so the global it names is unknown here")


def _judge_break(analysis: Analysis, where: str, state: FileState) -> None:
    if analysis.limit:
        state.add("PICKLE-LIMIT", loc(where, analysis.error_op, analysis.error_pos), analysis.limit)
    elif analysis.error:
        after_call = any(c.kind in CALL_KINDS for c in analysis.calls)
        evidence = analysis.error
        if after_call:
            evidence += (f" (after {len(analysis.calls)} call(s): a loader runs them before it fails, "
                         "the nullifAI technique)")
        state.add("PICKLE-UNPARSEABLE", loc(where, analysis.error_op, analysis.error_pos), evidence,
                  severity=Severity.HIGH if after_call else None)


def _computed_evidence(call: Call) -> str:
    return f"{render(call.callee)}{render(call.args)}"


def _build_evidence(build: Any, on_global: bool) -> str:
    if on_global:
        return f"BUILD sets the state of {build.target.qualname} itself: {render(build.state)}"
    return f"BUILD on {render(build.target, 120)} sets {render(build.state)}"


def _dunder_state(state: Any) -> bool:
    dicts = [state] if isinstance(state, dict) else [s for s in state if isinstance(s, dict)] \
        if isinstance(state, tuple) else []
    return any(isinstance(k, str) and k.startswith("__") and k.endswith("__") for d in dicts for k in d)


def _nested_pickles(analysis: Analysis, where: str, state: FileState, depth: int) -> None:
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
            nested = analyze(payload, 0, bounds(state))
            if not nested.imports:
                continue
            label = f"{where + ', ' if where else ''}nested pickle ({how}) in the argument at opcode #{op} @ byte {pos}"
            state.add("PICKLE-NESTED", loc(where, op, pos), f"a {how} pickle of {len(payload)} bytes is embedded "
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
    if looks_like_pickle(data[:10]) and data[:1] in (b"\x80", b"\x95", b"c", b"(", b"]", b"}"):
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


def scan_npy(data: bytes | mmap.mmap, where: str, state: FileState, depth: int) -> None:
    loc = where or "byte 0"
    parsed = npy_header(data, state.limits.max_header_bytes)
    if isinstance(parsed, str):
        state.add("PICKLE-UNPARSEABLE", loc, parsed)
        return
    descr, body = parsed
    if not descr_has_object(descr):
        return
    state.add("PICKLE-NUMPY-OBJECT-ARRAY", loc, f"dtype {descr!r}: the array is a pickle that np.load runs only "
              "with allow_pickle=True")
    pickle_where = f"{where}, pickle @ byte {body}" if where else f"pickle @ byte {body}"
    scan_pickle_bytes(data[body:] if isinstance(data, bytes) else bytes(data[body:]), pickle_where, state, depth)


def descr_has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, (list, tuple)):
        return any(descr_has_object(part) for part in descr)
    return False


