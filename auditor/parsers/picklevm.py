"""A static, symbolic pickle machine (protocols 0-5): it never imports or calls anything.

It walks the opcodes the way `pickle.Unpickler` would, but pushes symbols instead of objects:
a global becomes a `Ref`, a call becomes an `Obj` that remembers its callee and arguments, a
persistent id becomes an `Obj(kind="persid")`. The memo is tracked by key, so names assembled
from memo slots, protocol-0 strings, dotted STACK_GLOBAL names and EXT codes all resolve to the
exact global that a real loader would import. The result lists every import, every call (with
its literal arguments), every BUILD, every persistent id and the byte strings worth a second look
(nested pickles). A broken stream keeps everything seen before the break.

Detection is as wide as the unpickler's: `pickle.load` accepts a stream whatever its first opcode
(no PROTO, FRAME first, protocol-0 text), so `looks_like_pickle` and `find_pickles` do too.
The opcode handlers live in auditor.parsers.pickle_ops, the symbols in auditor.parsers.pickle_values.
"""
from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import Any

from auditor.parsers.budget import Budget
from auditor.parsers.pickle_ops import HANDLERS, JOBLIB_WRAPPER, _normalize, _text
from auditor.parsers.pickle_start import FRAME, PROTO, looks_like_pickle
from auditor.parsers.pickle_values import (
    MARK,
    NON_STRING_NAME,
    NOT_STR_NAME,
    Broken,
    Build,
    Call,
    Limit,
    Obj,
    Ref,
    Stop,
    Truncated,
    render,
)
from auditor.record import field, record

__all__ = ["FRAME", "JOBLIB_WRAPPER", "MARK", "PROTO", "Analysis", "Bounds", "Build", "Call", "Obj", "Ref", "analyze",
           "analyze_all", "evident", "find_pickles", "looks_like_pickle", "render"]

NESTED_MIN_BYTES = 8          # shorter byte strings cannot hold a pickle that does anything
STRINGS_KEPT = 10_000         # byte strings remembered for the nested-pickle pass
MAX_CANDIDATES = 256          # offsets find_pickles tries in one buffer
# A broken stream this long is a pickle (a cut or corrupted one): of 10^6 random 4 KiB buffers, none that
# begins like a pickle ran past six opcodes (tests/test_pickle_vm.py checks 6,144 seeded ones).
EVIDENT_OPCODES = 8


@record
class Analysis:
    """What one pickle (from its first opcode to STOP, or to the break) would do."""
    start: int
    end: int = 0                  # offset just after STOP (or where parsing stopped)
    opcodes: int = 0
    protocol: int = 0
    imports: list[Ref] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    persids: list[Obj] = field(default_factory=list)
    strings: list[tuple[bytes | str, int, int]] = field(default_factory=list)  # value, op, pos
    ext_codes: list[tuple[int, int, int]] = field(default_factory=list)        # code, op, pos
    error: str = ""               # why the stream broke
    needed: int = 0               # it broke because the bytes ended: the offset it needed to read to
    tidy: bool = False            # STOP left nothing behind (one value, no open mark), as picklers write
    error_op: int = -1
    error_pos: int = -1
    limit: str = ""               # which bound was hit
    value: Any = None             # the top of the stack at STOP
    joblib_arrays: int = 0
    nested_streams: list[Analysis] = field(default_factory=list)  # joblib object arrays

    @property
    def complete(self) -> bool:
        return not self.error and not self.limit


@record(frozen=True)
class Bounds:
    max_opcodes: int = 5_000_000
    max_memo: int = 1_000_000
    max_stack: int = 1_000_000
    max_container: int = 10_000_000   # items in one list/dict/tuple built by the stream
    joblib: bool = True
    budget: Budget | None = None      # the audit's shared budget ("opcodes" counter), if any


def analyze(data: bytes | memoryview | mmap.mmap, start: int = 0, bounds: Bounds = Bounds()) -> Analysis:
    """Analyse one pickle beginning at `start`. Never raises on hostile input."""
    vm = _Machine(data, start, bounds)
    vm.run()
    return vm.result


def evident(analysis: Analysis, size: int = 0, lone_import: bool = True) -> bool:
    """Whether a stream is a pickle rather than bytes that happen to begin like one: a loader could import
    something from it, or it is well formed at length (a tidy STOP after three opcodes, or EVIDENT_OPCODES
    before it breaks). SIZE: the bytes are the head of a file this long, so running out of them within
    SIZE is no break, and a protocol 2-5 header or three opcodes before the end are enough.
    One push then STOP is what 0.2% of random buffers that begin like a pickle do, and a NOTICE that
    opens "(c) 2024" reads as MARK, GLOBAL of a module named ") 2024 ...": neither is evidence.
    LONE_IMPORT=False is for text: a requirements.txt "cython\ntorch\n" reads as GLOBAL ython.torch, so
    there an import is evidence only when the stream goes on to call an imported global with a tuple of
    arguments, or to BUILD a dict or tuple state on it (a word list can spell GLOBAL, PERSID, REDUCE: a call
    on no tuple, which the loader refuses; or GLOBAL, GLOBAL, BUILD)."""
    if analysis.opcodes >= EVIDENT_OPCODES or any(evident(nested) for nested in analysis.nested_streams):
        return True
    if lone_import and any(ref.importable for ref in analysis.imports):
        return True
    if any(isinstance(call.callee, Ref) and call.callee.importable and isinstance(call.args, tuple)
           for call in analysis.calls):
        return True
    if any(isinstance(build.target, Ref) and build.target.importable and isinstance(build.state, (dict, tuple))
           for build in analysis.builds):
        return True
    if analysis.complete:
        return analysis.tidy and analysis.opcodes >= 3
    ran_out = 0 < analysis.needed <= size
    return ran_out and (analysis.protocol >= 2 or analysis.opcodes >= 3)


def analyze_all(data: bytes | memoryview | mmap.mmap, start: int = 0, bounds: Bounds = Bounds(),
                max_streams: int = 64) -> Iterator[Analysis]:
    """Every pickle in a row (a loader may call load() again and again). Stops at the first
    break, at the end of the data, or where the rest cannot begin a pickle."""
    pos = start
    for _ in range(max_streams):
        if pos >= len(data) or not looks_like_pickle(bytes(data[pos:pos + 10])):
            return
        result = analyze(data, pos, bounds)
        yield result
        if not result.complete or result.end <= pos:
            return
        pos = result.end


def find_pickles(data: bytes | memoryview | mmap.mmap, start: int = 0, end: int | None = None,
                 bounds: Bounds = Bounds(), max_candidates: int = MAX_CANDIDATES) -> list[Analysis]:
    """Pickles hidden anywhere in a buffer (appended after another format's data, inside a metadata
    string): every PROTO or FRAME opcode from `start` to `end` is tried, and a stream is kept when it
    reaches STOP or imports something. Overlapping finds are skipped (the first one wins)."""
    stop = len(data) if end is None else min(end, len(data))
    buf = data if isinstance(data, (bytes, mmap.mmap)) else bytes(data)
    found: list[Analysis] = []
    tried = 0
    pos = start
    covered = start
    while pos < stop and tried < max_candidates:
        hits = [i for i in (buf.find(b"\x80", pos, stop), buf.find(b"\x95", pos, stop)) if i >= 0]
        if not hits:
            break
        at = min(hits)
        pos = at + 1
        if at < covered or not looks_like_pickle(bytes(buf[at:at + 10])):
            continue
        tried += 1
        result = analyze(buf, at, bounds)
        if evident(result):
            found.append(result)
            covered = max(covered, result.end)
    return found


class _Machine:
    def __init__(self, data: bytes | memoryview | mmap.mmap, start: int, bounds: Bounds) -> None:
        # bytes or an mmap (a multi-gigabyte legacy checkpoint is never copied); both slice and find
        self.data = data if isinstance(data, (bytes, mmap.mmap)) else bytes(data)
        self.pos = start
        self.bounds = bounds
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = Analysis(start=start)
        self.op_index = 0
        self.op_pos = start

    # --- reading -------------------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        if n < 0:
            raise Broken(f"negative length {n} at byte {self.pos}")
        if self.pos + n > len(self.data):
            raise Truncated(f"truncated: needs {n} bytes at byte {self.pos}", self.pos + n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise Truncated(f"truncated: no end of line after byte {self.pos}", len(self.data) + 1)
        line = self.data[self.pos:end]
        self.pos = end + 1
        return line

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "little")

    # --- stack ---------------------------------------------------------------------------------
    def push(self, value: Any) -> None:
        if len(self.stack) >= self.bounds.max_stack:
            raise Limit(f"stack deeper than {self.bounds.max_stack}")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise Broken("pop from an empty stack")
        value = self.stack.pop()
        if value is MARK:
            raise Broken("a mark where a value was expected")
        return value

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is MARK:
            raise Broken("no value on the stack")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Broken("no mark on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def memo_put(self, key: int, value: Any) -> None:
        if key < 0:
            raise Broken(f"negative memo key {key}")
        if key not in self.memo and len(self.memo) >= self.bounds.max_memo:
            raise Limit(f"memo larger than {self.bounds.max_memo} entries")
        self.memo[key] = value

    def memo_get(self, key: int) -> Any:
        if key not in self.memo:
            raise Broken(f"memo key {key} was never stored")
        return self.memo[key]

    def remember_string(self, value: bytes | str) -> None:
        if len(value) >= NESTED_MIN_BYTES and len(self.result.strings) < STRINGS_KEPT:
            self.result.strings.append((value, self.op_index, self.op_pos))

    # --- run -----------------------------------------------------------------------------------
    def run(self) -> None:
        res = self.result
        handlers = HANDLERS
        budget = self.bounds.budget
        max_ops = self.bounds.max_opcodes
        if budget is not None and budget.left("opcodes") < max_ops:
            max_ops = budget.left("opcodes")
        try:
            while True:
                if self.op_index >= max_ops:
                    raise Limit(f"more than {max_ops} opcodes" if max_ops == self.bounds.max_opcodes
                                else "the audit's pickle opcode budget is spent")
                self.op_pos = self.pos
                if self.pos >= len(self.data):
                    raise Truncated("stream ends without STOP", len(self.data) + 1)
                code = self.data[self.pos]
                self.pos += 1
                handler = handlers.get(code)
                if handler is None:
                    raise Broken(f"invalid opcode 0x{code:02x}")
                handler(self)
                self.op_index += 1
        except Stop:
            self.op_index += 1
            res.end = self.pos
        except Limit as exc:
            res.limit = str(exc)
            res.error_op, res.error_pos, res.end = self.op_index, self.op_pos, self.pos
        except (Broken, ValueError, OverflowError, UnicodeDecodeError, struct.error, TypeError,
                IndexError, KeyError, RecursionError, MemoryError) as exc:
            res.error = str(exc) if isinstance(exc, Broken) else f"{type(exc).__name__}: {exc}"
            res.needed = exc.needed if isinstance(exc, Truncated) else 0
            res.error_op, res.error_pos, res.end = self.op_index, self.op_pos, self.pos
        res.opcodes = self.op_index
        if budget is not None:
            budget.spend_quietly("opcodes", self.op_index)

    # --- helpers for handlers ------------------------------------------------------------------
    def make_global(self, module: Any, name: Any, raw: str = "") -> Any:
        if raw:
            ref = Ref(module, name, self.op_index, self.op_pos, raw=raw)
        elif not isinstance(module, str) or not isinstance(name, str):
            # A real unpickler refuses non-str names; a scanner must not crash on them either. A symbol
            # (a call's result, another global) may be a str when the stream is really loaded.
            symbolic = isinstance(module, (Obj, Ref)) or isinstance(name, (Obj, Ref))
            ref = Ref(_text(module), _text(name), self.op_index, self.op_pos,
                      raw=NON_STRING_NAME if symbolic else NOT_STR_NAME)
        else:
            ref = _normalize(module, name, self.result.protocol, self.op_index, self.op_pos)
        self.result.imports.append(ref)
        return ref

    def record_call(self, kind: str, callee: Any, args: Any, kwargs: Any = None) -> Obj:
        self.result.calls.append(Call(kind, callee, args, self.op_index, self.op_pos, kwargs))
        return Obj(kind, callee, args, self.op_index, self.op_pos, kwargs)
