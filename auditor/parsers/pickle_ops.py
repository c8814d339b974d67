"""The opcode handlers of the static pickle machine (auditor.parsers.picklevm), one per opcode of
protocols 0-5, and the joblib array skipping. Each handler reads its argument, pops and pushes
symbols (auditor.parsers.pickle_values) and records imports, calls and BUILDs; none imports or calls.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import copyreg
import struct
from typing import TYPE_CHECKING, Any

from auditor.parsers.pickle_values import MARK, NOT_UTF8_NAME, Broken, Build, Limit, Obj, Ref, Stop, render, safe_key

if TYPE_CHECKING:
    from auditor.parsers.picklevm import _Machine

# Joblib writes an array's raw bytes into the pickle stream right after the BUILD of this class.
JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")

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


def joblib_after_build(m: _Machine, target: Any) -> None:
    """After a BUILD of joblib's NumpyArrayWrapper: the array's bytes (or object pickle) follow in line."""
    if not (m.bounds.joblib and isinstance(target, Obj) and isinstance(target.callee, Ref)
            and (target.callee.module, target.callee.name) == JOBLIB_WRAPPER):
        return
    m.result.joblib_arrays += 1
    state = target.state if isinstance(target.state, dict) else {}
    dtype = state.get("dtype")
    if _dtype_has_object(dtype):
        from auditor.parsers.picklevm import analyze
        inner = analyze(m.data, m.pos, m.bounds)
        m.result.nested_streams.append(inner)
        if not inner.complete:
            raise Broken(f"the object array's pickle at byte {m.pos} is broken: "
                          f"{inner.error or inner.limit}")
        m.pos = inner.end
        return
    itemsize = _dtype_itemsize(dtype)
    count = 1
    shape = state.get("shape", ())
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Broken("joblib array with a shape that is not a tuple of sizes")
    for dim in shape:
        count *= dim
    if itemsize is None:
        raise Broken(f"joblib array with a dtype this analyser cannot size: {render(dtype)}")
    if "numpy_array_alignment_bytes" in state and state["numpy_array_alignment_bytes"] is not None:
        pad = m.uint(1)
        m.read(pad)
    m.read(count * itemsize)


# --- opcode handlers ---------------------------------------------------------------------------

def _h_proto(m: _Machine) -> None:
    m.result.protocol = m.uint(1)
    if m.result.protocol > 5:
        raise Broken(f"unsupported protocol {m.result.protocol}")


def _h_frame(m: _Machine) -> None:
    m.uint(8)   # frames are an I/O hint; the opcodes inside are read in line


def _h_stop(m: _Machine) -> None:
    m.result.value = m.pop()
    m.result.tidy = not m.stack and not m.metastack
    raise Stop


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
        raise Limit("LONG literal longer than 10000 digits")
    m.push(int(line, 0))


def _h_long_n(size: int) -> Any:
    def handler(m: _Machine) -> None:
        n = m.uint(size)
        if size == 4 and n > 1_000_000:
            raise Limit(f"LONG4 of {n} bytes")
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
        raise Broken("STRING argument is not quoted")
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
        raise Broken("BINSTRING with a negative length")
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
            raise Broken(f"TUPLE{n} needs {n} values")
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
        raise Broken("odd number of items for a dict")
    if isinstance(target, dict):
        if len(target) + len(items) // 2 > m.bounds.max_container:
            raise Limit(f"dict larger than {m.bounds.max_container} items")
        for i in range(0, len(items), 2):
            target[safe_key(items[i])] = items[i + 1]
    elif isinstance(target, Obj):
        # __setitem__ on an arbitrary object runs its code: remember it as a call.
        m.record_call("setitem", target, tuple(items))
    elif target is MARK:
        raise Broken("SETITEM(S) on a mark")


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
            raise Limit(f"list larger than {m.bounds.max_container} items")
        target.extend(items)
    elif isinstance(target, Obj):
        m.record_call("append", target, tuple(items))
    elif not isinstance(target, (set, frozenset)):
        raise Broken(f"APPEND(S) on a {type(target).__name__}")


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
        raise Broken(f"GLOBAL name is not UTF-8: {raw!r}") from None


def _h_global(m: _Machine) -> None:
    module_raw = m.readline()
    name_raw = m.readline()
    try:
        module, name = _line_text(module_raw), _line_text(name_raw)
    except Broken:
        m.make_global(module_raw.decode("latin-1"), name_raw.decode("latin-1"), raw=NOT_UTF8_NAME)
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
    except Broken:
        m.make_global(module_raw.decode("latin-1"), name_raw.decode("latin-1"), raw=NOT_UTF8_NAME)
        raise
    cls = m.make_global(module, name)
    args = tuple(m.pop_mark())
    m.push(m.record_call("inst", cls, args))


def _h_obj(m: _Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise Broken("OBJ without a class")
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
    joblib_after_build(m, target)


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


HANDLERS: dict[int, Any] = {
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

