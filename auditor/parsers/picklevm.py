"""A static, symbolic pickle machine (protocols 0-5): it never imports or calls anything.

It walks the opcodes the way `pickle.Unpickler` would, but pushes symbols instead of objects:
a global becomes a `Ref`, a call becomes an `Obj` that remembers its callee and arguments, a
persistent id becomes an `Obj(kind="persid")`. The memo is tracked by key, so names assembled
from memo slots, protocol-0 strings, dotted STACK_GLOBAL names and EXT codes all resolve to the
exact global that a real loader would import. The result lists every import, every call (with
its literal arguments), every BUILD, every persistent id and the byte strings worth a second look
(nested pickles). A broken stream keeps everything seen before the break.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import copyreg
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Joblib writes an array's raw bytes into the pickle stream right after the BUILD of this class.
JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
NESTED_MIN_BYTES = 8          # shorter byte strings cannot hold a pickle that does anything
STRINGS_KEPT = 10_000         # byte strings remembered for the nested-pickle pass


class _Mark:
    def __repr__(self) -> str:
        return "<mark>"


MARK = _Mark()


@dataclass(eq=False)
class Ref:
    """A global the loader would import: `module.name` (name may be dotted)."""
    module: str
    name: str
    op: int
    pos: int
    raw: str = ""                 # the name as written, when _compat_pickle renamed it

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Obj:
    """The result of a call, an instantiation, a persistent id or an extension code."""
    kind: str                     # reduce, newobj, newobj_ex, inst, obj, persid, ext, buffer
    callee: Any
    args: Any
    op: int
    pos: int
    kwargs: Any = None
    state: Any = None             # the last BUILD state applied to it


@dataclass(frozen=True)
class Call:
    kind: str
    callee: Any
    args: Any
    op: int
    pos: int
    kwargs: Any = None


@dataclass(frozen=True)
class Build:
    target: Any
    state: Any
    op: int
    pos: int


@dataclass
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
    error_op: int = -1
    error_pos: int = -1
    limit: str = ""               # which bound was hit
    value: Any = None             # the top of the stack at STOP
    joblib_arrays: int = 0
    nested_streams: list[Analysis] = field(default_factory=list)  # joblib object arrays

    @property
    def complete(self) -> bool:
        return not self.error and not self.limit


@dataclass(frozen=True)
class Bounds:
    max_opcodes: int = 5_000_000
    max_memo: int = 1_000_000
    max_stack: int = 1_000_000
    max_container: int = 10_000_000   # items in one list/dict/tuple built by the stream
    joblib: bool = True


class _Stop(Exception):
    pass


class _Broken(Exception):
    pass


class _Limit(Exception):
    pass


def analyze(data: bytes | memoryview | mmap.mmap, start: int = 0, bounds: Bounds = Bounds()) -> Analysis:
    """Analyse one pickle beginning at `start`. Never raises on hostile input."""
    vm = _Machine(data, start, bounds)
    vm.run()
    return vm.result


def analyze_all(data: bytes | memoryview | mmap.mmap, start: int = 0, bounds: Bounds = Bounds(),
                max_streams: int = 64) -> Iterator[Analysis]:
    """Every pickle in a row (a loader may call load() again and again). Stops at the first
    break, at the end of the data, or where the rest does not begin like a pickle."""
    pos = start
    for _ in range(max_streams):
        if pos >= len(data) or not looks_like_pickle(bytes(data[pos:pos + 2])):
            return
        result = analyze(data, pos, bounds)
        yield result
        if not result.complete or result.end <= pos:
            return
        pos = result.end


# Opcodes a loader can execute first: they push a value or a mark (the rest need a non-empty stack).
_PROTO0_FIRST = set(b"(NIJKLMFGSTUVXBC])}cP") | {0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x96}


def looks_like_pickle(head: bytes) -> bool:
    """Whether bytes could begin a pickle: a PROTO opcode, or a protocol-0/1 opcode that can start one."""
    if not head:
        return False
    if head[0] == 0x80:
        return len(head) < 2 or head[1] <= 5
    return head[0] in _PROTO0_FIRST


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
        if n < 0 or self.pos + n > len(self.data):
            raise _Broken(f"truncated: needs {n} bytes at byte {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Broken(f"truncated: no end of line after byte {self.pos}")
        line = self.data[self.pos:end]
        self.pos = end + 1
        return line

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "little")

    # --- stack ---------------------------------------------------------------------------------
    def push(self, value: Any) -> None:
        if len(self.stack) >= self.bounds.max_stack:
            raise _Limit(f"stack deeper than {self.bounds.max_stack}")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise _Broken("pop from an empty stack")
        value = self.stack.pop()
        if value is MARK:
            raise _Broken("a mark where a value was expected")
        return value

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is MARK:
            raise _Broken("no value on the stack")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Broken("no mark on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def memo_put(self, key: int, value: Any) -> None:
        if key < 0:
            raise _Broken(f"negative memo key {key}")
        if key not in self.memo and len(self.memo) >= self.bounds.max_memo:
            raise _Limit(f"memo larger than {self.bounds.max_memo} entries")
        self.memo[key] = value

    def memo_get(self, key: int) -> Any:
        if key not in self.memo:
            raise _Broken(f"memo key {key} was never stored")
        return self.memo[key]

    def remember_string(self, value: bytes | str) -> None:
        if len(value) >= NESTED_MIN_BYTES and len(self.result.strings) < STRINGS_KEPT:
            self.result.strings.append((value, self.op_index, self.op_pos))

    # --- run -----------------------------------------------------------------------------------
    def run(self) -> None:
        res = self.result
        handlers = _HANDLERS
        max_ops = self.bounds.max_opcodes
        try:
            while True:
                if self.op_index >= max_ops:
                    raise _Limit(f"more than {max_ops} opcodes")
                self.op_pos = self.pos
                if self.pos >= len(self.data):
                    raise _Broken("stream ends without STOP")
                code = self.data[self.pos]
                self.pos += 1
                handler = handlers.get(code)
                if handler is None:
                    raise _Broken(f"invalid opcode 0x{code:02x}")
                handler(self)
                self.op_index += 1
        except _Stop:
            self.op_index += 1
            res.end = self.pos
        except _Limit as exc:
            res.limit = str(exc)
            res.error_op, res.error_pos, res.end = self.op_index, self.op_pos, self.pos
        except (_Broken, ValueError, OverflowError, UnicodeDecodeError, struct.error, TypeError,
                IndexError, KeyError, RecursionError, MemoryError) as exc:
            res.error = str(exc) if isinstance(exc, _Broken) else f"{type(exc).__name__}: {exc}"
            res.error_op, res.error_pos, res.end = self.op_index, self.op_pos, self.pos
        res.opcodes = self.op_index

    # --- helpers for handlers ------------------------------------------------------------------
    def make_global(self, module: Any, name: Any) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            # A real unpickler refuses non-str names; a scanner must not crash on them either.
            ref = Ref(_text(module), _text(name), self.op_index, self.op_pos, raw="<non-string name>")
        else:
            ref = _normalize(module, name, self.result.protocol, self.op_index, self.op_pos)
        self.result.imports.append(ref)
        return ref

    def record_call(self, kind: str, callee: Any, args: Any, kwargs: Any = None) -> Obj:
        self.result.calls.append(Call(kind, callee, args, self.op_index, self.op_pos, kwargs))
        return Obj(kind, callee, args, self.op_index, self.op_pos, kwargs)

    def after_build(self, target: Any) -> None:
        if not (self.bounds.joblib and isinstance(target, Obj) and isinstance(target.callee, Ref)
                and (target.callee.module, target.callee.name) == JOBLIB_WRAPPER):
            return
        self.result.joblib_arrays += 1
        state = target.state if isinstance(target.state, dict) else {}
        dtype = state.get("dtype")
        if _dtype_has_object(dtype):
            inner = analyze(self.data, self.pos, self.bounds)
            self.result.nested_streams.append(inner)
            if not inner.complete:
                raise _Broken(f"the object array's pickle at byte {self.pos} is broken: "
                              f"{inner.error or inner.limit}")
            self.pos = inner.end
            return
        itemsize = _dtype_itemsize(dtype)
        count = 1
        shape = state.get("shape", ())
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _Broken("joblib array with a shape that is not a tuple of sizes")
        for dim in shape:
            count *= dim
        if itemsize is None:
            raise _Broken(f"joblib array with a dtype this analyser cannot size: {render(dtype)}")
        if "numpy_array_alignment_bytes" in state and state["numpy_array_alignment_bytes"] is not None:
            pad = self.uint(1)
            self.read(pad)
        self.read(count * itemsize)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else render(value)


def _normalize(module: str, name: str, protocol: int, op: int, pos: int) -> Ref:
    """The module and name a Python 3 loader imports (it maps Python 2 names for protocol < 3)."""
    raw = ""
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            raw = f"{module}.{name}"
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            raw = f"{module}.{name}"
            module = _compat_pickle.IMPORT_MAPPING[module]
    return Ref(module, name, op, pos, raw)


def _dtype_parts(dtype: Any) -> tuple[str, Any]:
    """(type code, BUILD state) of a symbolic numpy.dtype(...) call."""
    if isinstance(dtype, Obj) and isinstance(dtype.callee, Ref) and dtype.callee.name == "dtype":
        args = dtype.args if isinstance(dtype.args, tuple) else ()
        code = args[0] if args and isinstance(args[0], str) else ""
        return code, dtype.state
    return "", None


def _dtype_has_object(dtype: Any) -> bool:
    code, state = _dtype_parts(dtype)
    if code.startswith("O"):
        return True
    return "O" in render(state) if code.startswith("V") else False


def _dtype_itemsize(dtype: Any) -> int | None:
    code, state = _dtype_parts(dtype)
    if isinstance(state, tuple) and len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        return state[5]
    digits = "".join(ch for ch in code if ch.isdigit())
    if code in ("?", "b1") or code[:1] == "?":
        return 1
    if digits:
        size = int(digits)
        return size * 4 if code[:1] == "U" else size
    return None


# --- opcode handlers ---------------------------------------------------------------------------

def _h_proto(m: _Machine) -> None:
    m.result.protocol = m.uint(1)
    if m.result.protocol > 5:
        raise _Broken(f"unsupported protocol {m.result.protocol}")


def _h_frame(m: _Machine) -> None:
    m.uint(8)   # frames are an I/O hint; the opcodes inside are read in line


def _h_stop(m: _Machine) -> None:
    m.result.value = m.pop()
    raise _Stop


def _h_mark(m: _Machine) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _h_pop(m: _Machine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _h_pop_mark(m: _Machine) -> None:
    m.pop_mark()


def _h_dup(m: _Machine) -> None:
    m.push(m.top())


def _h_none(m: _Machine) -> None:
    m.push(None)


def _h_true(m: _Machine) -> None:
    m.push(True)


def _h_false(m: _Machine) -> None:
    m.push(False)


def _h_int(m: _Machine) -> None:
    line = m.readline()
    if line == b"00":
        m.push(False)
    elif line == b"01":
        m.push(True)
    else:
        m.push(int(line, 0))


def _h_binint(m: _Machine) -> None:
    m.push(struct.unpack("<i", m.read(4))[0])


def _h_binint1(m: _Machine) -> None:
    m.push(m.uint(1))


def _h_binint2(m: _Machine) -> None:
    m.push(m.uint(2))


def _h_long(m: _Machine) -> None:
    line = m.readline()
    if line.endswith(b"L"):
        line = line[:-1]
    if len(line) > 10_000:
        raise _Limit("LONG literal longer than 10000 digits")
    m.push(int(line, 0))


def _h_long_n(size: int) -> Any:
    def handler(m: _Machine) -> None:
        n = m.uint(size)
        if size == 4 and n > 1_000_000:
            raise _Limit(f"LONG4 of {n} bytes")
        m.push(int.from_bytes(m.read(n), "little", signed=True))
    return handler


def _h_float(m: _Machine) -> None:
    m.push(float(m.readline()))


def _h_binfloat(m: _Machine) -> None:
    m.push(struct.unpack(">d", m.read(8))[0])


def _h_string(m: _Machine) -> None:
    line = m.readline()
    if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
        line = line[1:-1]
    else:
        raise _Broken("STRING argument is not quoted")
    value = codecs.escape_decode(line)[0].decode("latin-1")   # Python 3 default encoding="ASCII" would fail
    m.remember_string(value)
    m.push(value)


def _push_bytes_as_str(m: _Machine, raw: bytes) -> None:
    value = raw.decode("latin-1")
    m.remember_string(value)
    m.push(value)


def _h_binstring(m: _Machine) -> None:
    n = struct.unpack("<i", m.read(4))[0]
    if n < 0:
        raise _Broken("BINSTRING with a negative length")
    _push_bytes_as_str(m, m.read(n))


def _h_short_binstring(m: _Machine) -> None:
    _push_bytes_as_str(m, m.read(m.uint(1)))


def _push_bytes(m: _Machine, raw: bytes) -> None:
    m.remember_string(raw)
    m.push(raw)


def _h_bytes_n(size: int) -> Any:
    def handler(m: _Machine) -> None:
        _push_bytes(m, m.read(m.uint(size)))
    return handler


def _h_bytearray8(m: _Machine) -> None:
    _push_bytes(m, m.read(m.uint(8)))


def _h_unicode(m: _Machine) -> None:
    value = m.readline().decode("raw-unicode-escape")
    m.remember_string(value)
    m.push(value)


def _h_unicode_n(size: int) -> Any:
    def handler(m: _Machine) -> None:
        value = m.read(m.uint(size)).decode("utf-8", "surrogatepass")
        m.remember_string(value)
        m.push(value)
    return handler


def _h_next_buffer(m: _Machine) -> None:
    m.push(Obj("buffer", None, (), m.op_index, m.op_pos))


def _h_readonly_buffer(m: _Machine) -> None:
    m.top()


def _h_empty_tuple(m: _Machine) -> None:
    m.push(())


def _h_tuple(m: _Machine) -> None:
    m.push(tuple(m.pop_mark()))


def _h_tuple_n(n: int) -> Any:
    def handler(m: _Machine) -> None:
        if len(m.stack) < n or any(v is MARK for v in m.stack[-n:]):
            raise _Broken(f"TUPLE{n} needs {n} values")
        items = tuple(m.stack[-n:])
        del m.stack[-n:]
        m.push(items)
    return handler


def _h_empty_list(m: _Machine) -> None:
    m.push([])


def _h_list(m: _Machine) -> None:
    m.push(m.pop_mark())


def _h_empty_dict(m: _Machine) -> None:
    m.push({})


def _pairs_into(m: _Machine, target: Any, items: list[Any]) -> None:
    if len(items) % 2:
        raise _Broken("odd number of items for a dict")
    if isinstance(target, dict):
        if len(target) + len(items) // 2 > m.bounds.max_container:
            raise _Limit(f"dict larger than {m.bounds.max_container} items")
        for i in range(0, len(items), 2):
            target[_key(items[i])] = items[i + 1]
    elif isinstance(target, Obj):
        # __setitem__ on an arbitrary object runs its code: remember it as a call.
        m.record_call("setitem", target, tuple(items))
    elif target is MARK:
        raise _Broken("SETITEM(S) on a mark")


def _key(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return _Unhashable(value)


@dataclass(eq=False)
class _Unhashable:
    value: Any

    def __repr__(self) -> str:
        return render(self.value)


def _h_dict(m: _Machine) -> None:
    items = m.pop_mark()
    target: dict[Any, Any] = {}
    _pairs_into(m, target, items)
    m.push(target)


def _h_setitem(m: _Machine) -> None:
    value = m.pop()
    key = m.pop()
    _pairs_into(m, m.top(), [key, value])


def _h_setitems(m: _Machine) -> None:
    items = m.pop_mark()
    _pairs_into(m, m.top(), items)


def _extend(m: _Machine, target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        if len(target) + len(items) > m.bounds.max_container:
            raise _Limit(f"list larger than {m.bounds.max_container} items")
        target.extend(items)
    elif isinstance(target, Obj):
        m.record_call("append", target, tuple(items))
    elif not isinstance(target, (set, frozenset)):
        raise _Broken(f"APPEND(S) on a {type(target).__name__}")


def _h_append(m: _Machine) -> None:
    value = m.pop()
    _extend(m, m.top(), [value])


def _h_appends(m: _Machine) -> None:
    items = m.pop_mark()
    _extend(m, m.top(), items)


def _h_empty_set(m: _Machine) -> None:
    m.push([])   # kept as a list: members may be unhashable symbols


def _h_additems(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, Obj):
        m.record_call("add", target, tuple(items))


def _h_frozenset(m: _Machine) -> None:
    m.push(tuple(m.pop_mark()))


def _h_get(m: _Machine) -> None:
    m.push(m.memo_get(int(m.readline())))


def _h_binget(m: _Machine) -> None:
    m.push(m.memo_get(m.uint(1)))


def _h_long_binget(m: _Machine) -> None:
    m.push(m.memo_get(m.uint(4)))


def _h_put(m: _Machine) -> None:
    m.memo_put(int(m.readline()), m.top())


def _h_binput(m: _Machine) -> None:
    m.memo_put(m.uint(1), m.top())


def _h_long_binput(m: _Machine) -> None:
    m.memo_put(m.uint(4), m.top())


def _h_memoize(m: _Machine) -> None:
    m.memo_put(len(m.memo), m.top())


def _line_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # The real loader stops here; the name is still reported, byte for byte.
        raise _Broken(f"GLOBAL name is not UTF-8: {raw!r}") from None


def _h_global(m: _Machine) -> None:
    module_raw = m.readline()
    name_raw = m.readline()
    try:
        module, name = _line_text(module_raw), _line_text(name_raw)
    except _Broken:
        m.make_global(module_raw.decode("latin-1"), name_raw.decode("latin-1"))
        raise
    m.push(m.make_global(module, name))


def _h_stack_global(m: _Machine) -> None:
    name = m.pop()
    module = m.pop()
    m.push(m.make_global(module, name))


def _h_inst(m: _Machine) -> None:
    module_raw = m.readline()
    name_raw = m.readline()
    try:
        module, name = _line_text(module_raw), _line_text(name_raw)
    except _Broken:
        m.make_global(module_raw.decode("latin-1"), name_raw.decode("latin-1"))
        raise
    cls = m.make_global(module, name)
    args = tuple(m.pop_mark())
    m.push(m.record_call("inst", cls, args))


def _h_obj(m: _Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise _Broken("OBJ without a class")
    m.push(m.record_call("obj", items[0], tuple(items[1:])))


def _h_newobj(m: _Machine) -> None:
    args = m.pop()
    cls = m.pop()
    m.push(m.record_call("newobj", cls, args))


def _h_newobj_ex(m: _Machine) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.push(m.record_call("newobj_ex", cls, args, kwargs))


def _h_reduce(m: _Machine) -> None:
    args = m.pop()
    func = m.pop()
    m.push(m.record_call("reduce", func, args))


def _h_build(m: _Machine) -> None:
    state = m.pop()
    target = m.top()
    m.result.builds.append(Build(target, state, m.op_index, m.op_pos))
    if isinstance(target, Obj):
        target.state = state
    m.after_build(target)


def _h_persid(m: _Machine) -> None:
    pid = m.readline().decode("ascii", "replace")
    obj = Obj("persid", None, pid, m.op_index, m.op_pos)
    m.result.persids.append(obj)
    m.push(obj)


def _h_binpersid(m: _Machine) -> None:
    obj = Obj("persid", None, m.pop(), m.op_index, m.op_pos)
    m.result.persids.append(obj)
    m.push(obj)


def _h_ext(size: int) -> Any:
    def handler(m: _Machine) -> None:
        code = m.uint(size)
        m.result.ext_codes.append((code, m.op_index, m.op_pos))
        known = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]  # what this process resolves
        if known:
            m.push(m.make_global(*known))
        else:
            m.push(Obj("ext", None, code, m.op_index, m.op_pos))
    return handler


_HANDLERS: dict[int, Any] = {
    0x80: _h_proto, 0x95: _h_frame, ord("."): _h_stop, ord("("): _h_mark, ord("0"): _h_pop,
    ord("1"): _h_pop_mark, ord("2"): _h_dup, ord("N"): _h_none, 0x88: _h_true, 0x89: _h_false,
    ord("I"): _h_int, ord("J"): _h_binint, ord("K"): _h_binint1, ord("M"): _h_binint2,
    ord("L"): _h_long, 0x8A: _h_long_n(1), 0x8B: _h_long_n(4), ord("F"): _h_float,
    ord("G"): _h_binfloat, ord("S"): _h_string, ord("T"): _h_binstring, ord("U"): _h_short_binstring,
    ord("B"): _h_bytes_n(4), ord("C"): _h_bytes_n(1), 0x8E: _h_bytes_n(8), 0x96: _h_bytearray8,
    ord("V"): _h_unicode, ord("X"): _h_unicode_n(4), 0x8C: _h_unicode_n(1), 0x8D: _h_unicode_n(8),
    0x97: _h_next_buffer, 0x98: _h_readonly_buffer,
    ord(")"): _h_empty_tuple, ord("t"): _h_tuple, 0x85: _h_tuple_n(1), 0x86: _h_tuple_n(2),
    0x87: _h_tuple_n(3), ord("]"): _h_empty_list, ord("l"): _h_list, ord("}"): _h_empty_dict,
    ord("d"): _h_dict, ord("s"): _h_setitem, ord("u"): _h_setitems, ord("a"): _h_append,
    ord("e"): _h_appends, 0x8F: _h_empty_set, 0x90: _h_additems, 0x91: _h_frozenset,
    ord("g"): _h_get, ord("h"): _h_binget, ord("j"): _h_long_binget, ord("p"): _h_put,
    ord("q"): _h_binput, ord("r"): _h_long_binput, 0x94: _h_memoize,
    ord("c"): _h_global, 0x93: _h_stack_global, ord("i"): _h_inst, ord("o"): _h_obj,
    0x81: _h_newobj, 0x92: _h_newobj_ex, ord("R"): _h_reduce, ord("b"): _h_build,
    ord("P"): _h_persid, ord("Q"): _h_binpersid, 0x82: _h_ext(1), 0x83: _h_ext(2), 0x84: _h_ext(4),
}


# --- rendering ---------------------------------------------------------------------------------

def render(value: Any, budget: int = 300) -> str:
    """A short, bounded, cycle-safe Python-like rendering of a symbolic value."""
    out: list[str] = []
    _render(value, out, [budget], set(), 0)
    text = "".join(out)
    return text if len(text) <= budget else text[:budget] + "..."


def _render(value: Any, out: list[str], budget: list[int], seen: set[int], depth: int) -> None:
    if budget[0] <= 0 or depth > 12:
        out.append("...")
        return
    if isinstance(value, Ref):
        piece = value.qualname
    elif isinstance(value, Obj):
        if id(value) in seen:
            out.append("<cycle>")
            return
        seen = seen | {id(value)}
        if value.kind == "persid":
            out.append("persistent_id(")
            _render(value.args, out, budget, seen, depth + 1)
            out.append(")")
            return
        if value.kind == "ext":
            out.append(f"<extension code {value.args}>")
            return
        if value.kind == "buffer":
            out.append("<out-of-band buffer>")
            return
        _render(value.callee, out, budget, seen, depth + 1)
        out.append("(")
        args = value.args if isinstance(value.args, tuple) else (value.args,)
        for i, arg in enumerate(args):
            if i:
                out.append(", ")
            _render(arg, out, budget, seen, depth + 1)
        out.append(")")
        return
    elif isinstance(value, (list, tuple, dict)):
        if id(value) in seen:
            out.append("<cycle>")
            return
        seen = seen | {id(value)}
        opener, closer = ("[", "]") if isinstance(value, list) else ("(", ")") if isinstance(value, tuple) else ("{", "}")
        out.append(opener)
        items = list(value.items()) if isinstance(value, dict) else list(value)
        for i, item in enumerate(items[:20]):
            if i:
                out.append(", ")
            if isinstance(value, dict):
                _render(item[0], out, budget, seen, depth + 1)
                out.append(": ")
                _render(item[1], out, budget, seen, depth + 1)
            else:
                _render(item, out, budget, seen, depth + 1)
        if len(items) > 20:
            out.append(f", ... {len(items) - 20} more")
        if isinstance(value, tuple) and len(items) == 1:
            out.append(",")
        out.append(closer)
        return
    elif isinstance(value, (bytes, str)):
        piece = repr(value[:200]) + ("..." if len(value) > 200 else "")
    else:
        piece = repr(value)
    budget[0] -= len(piece)
    out.append(piece)
