"""Constant folding of Python expressions, bounded in size and work.

`Folder.fold(node)` returns the value an expression has without running it (string concatenation,
f-strings, chr() chains, bytes.fromhex, codecs rot13, base64/zlib/bz2 of constants, join, slicing),
or UNKNOWN. Every value it builds is bounded: strings and bytes by MAX_FOLD_CHARS, integers by
MAX_INT_BITS, lists and dicts by their expanded weight (MAX_FOLD_WEIGHT, shared sub-lists counted
each time they appear), and every file by a fold-step budget (MAX_FOLD_STEPS), so a 1 KB file that
doubles a list or squares an integer in a chain of assignments costs milliseconds, not gigabytes.
Decoders are as lenient as the stdlib functions they imitate (b64decode drops non-alphabet bytes).
"""
from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import lzma
import re
import zlib
from typing import Any

MAX_FOLD_CHARS = 1_000_000        # longest folded string/bytes (bounds decompression and repetition)
MAX_INT_BITS = 4096               # largest folded integer (squaring chains stop here)
MAX_FOLD_WEIGHT = 200_000         # expanded size of a folded list/dict (elements plus their sizes)
MAX_FOLD_DEPTH = 60               # nested expressions folded
MAX_FOLD_STEPS = 2_000_000        # fold calls per file
MAX_COMPREHENSION_ITEMS = 100_000


class _Unknown:
    def __repr__(self) -> str:
        return "<computed>"


UNKNOWN: Any = _Unknown()
_B64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/=]")


class FoldBudget(Exception):
    """The per-file folding budget is spent; the caller reports it as a limit."""


class Folder:
    """Folds expressions against `constants` (name -> folded value); `resolve` names calls."""

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self.steps = 0
        self.budget_hit = False
        self._weights: dict[int, int] = {}

    def resolve(self, node: ast.AST, depth: int = 0, called: bool = False) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def weight(self, value: Any) -> int:
        """Expanded size of a folded value; containers were weighed when they were built."""
        if isinstance(value, (str, bytes)):
            return len(value) + 1
        if isinstance(value, int) and not isinstance(value, bool):
            return value.bit_length() // 64 + 1
        if isinstance(value, (list, tuple, dict)):
            return self._weights.get(id(value), len(value) + 1)
        return 1

    def _container(self, value: Any, parts: list[Any], total: int = 0) -> Any:
        total = total or len(parts) + 1 + sum(self.weight(p) for p in parts)
        if total > MAX_FOLD_WEIGHT:
            return UNKNOWN
        self._weights[id(value)] = total
        return value

    def fold(self, node: ast.AST, depth: int = 0) -> Any:
        """The constant value of an expression, or UNKNOWN."""
        self.steps += 1
        if self.steps > MAX_FOLD_STEPS:
            self.budget_hit = True
            return UNKNOWN
        if depth > MAX_FOLD_DEPTH:
            return UNKNOWN
        d = depth + 1
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id, UNKNOWN)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.fold(e, d) for e in node.elts]
            return UNKNOWN if any(i is UNKNOWN for i in items) else self._container(items, items)
        if isinstance(node, ast.Dict):
            return self._fold_dict(node, d)
        if isinstance(node, ast.BinOp):
            return self._fold_binop(node, d)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            return _fold_unary(node.op, self.fold(node.operand, d))
        if isinstance(node, ast.JoinedStr):
            return self._fold_fstring(node, d)
        if isinstance(node, ast.Subscript):
            return self._fold_subscript(node, d)
        if isinstance(node, ast.Call):
            return self._fold_call(node, d)
        return UNKNOWN

    def _fold_dict(self, node: ast.Dict, d: int) -> Any:
        if any(k is None for k in node.keys):
            return UNKNOWN
        keys = [self.fold(k, d) for k in node.keys if k is not None]
        values = [self.fold(v, d) for v in node.values]
        if any(x is UNKNOWN for x in keys + values) or not all(isinstance(k, (str, int, bytes)) for k in keys):
            return UNKNOWN
        return self._container(dict(zip(keys, values, strict=True)), keys + values)

    def _fold_fstring(self, node: ast.JoinedStr, d: int) -> Any:
        parts = []
        for value in node.values:
            part = self.fold(value.value if isinstance(value, ast.FormattedValue) else value, d)
            if part is UNKNOWN or self.weight(part) > MAX_FOLD_CHARS:
                return UNKNOWN
            parts.append(part if isinstance(part, str) else _safe(lambda p=part: str(p)))
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        return bounded("".join(parts))

    def _fold_binop(self, node: ast.BinOp, d: int) -> Any:
        left, right = self.fold(node.left, d), self.fold(node.right, d)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if isinstance(node.op, ast.Add):
            if isinstance(left, (str, bytes)) and type(left) is type(right):
                joined: Any = left + right  # type: ignore[operator]
                return bounded(joined)
            if isinstance(left, list) and isinstance(right, list):
                total = self.weight(left) + self.weight(right)
                return self._container(left + right, [], total) if total <= MAX_FOLD_WEIGHT else UNKNOWN
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes)) and is_int(n):
                    return seq * n if len(seq) * max(n, 0) <= MAX_FOLD_CHARS else UNKNOWN
        if is_int(left) and is_int(right):
            return _fold_int(node.op, left, right)
        return UNKNOWN

    def _fold_subscript(self, node: ast.Subscript, d: int) -> Any:
        value = self.fold(node.value, d)
        if isinstance(value, dict):
            key = self.fold(node.slice, d)
            return value.get(key, UNKNOWN) if isinstance(key, (str, int, bytes)) else UNKNOWN
        if not isinstance(value, (str, bytes, list)):
            return UNKNOWN
        sl = node.slice
        try:
            if isinstance(sl, ast.Slice):
                parts = [None if p is None else self.fold(p, d) for p in (sl.lower, sl.upper, sl.step)]
                if any(p is UNKNOWN or not (p is None or is_int(p)) for p in parts):
                    return UNKNOWN
                out = value[slice(*parts)]
                return self._container(out, out) if isinstance(out, list) else out
            index = self.fold(sl, d)
            return value[index] if is_int(index) else UNKNOWN
        except (IndexError, ValueError):
            return UNKNOWN

    def _fold_call(self, node: ast.Call, d: int) -> Any:
        func = node.func
        args = [self.fold(a, d) for a in node.args]
        if any(a is UNKNOWN for a in args) or any(isinstance(a, ast.Starred) for a in node.args):
            return self._fold_join_generator(node, d)
        kwargs = {k.arg: self.fold(k.value, d) for k in node.keywords if k.arg}
        if any(v is UNKNOWN for v in kwargs.values()):
            return UNKNOWN
        # Methods of a constant receiver: "".join, b"".decode, "x".replace ...
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in ("bytes", "bytearray") and func.attr == "fromhex":
                return _safe(lambda: bytes.fromhex(args[0]))
            receiver = self.fold(func.value, d)
            if receiver is not UNKNOWN:
                return fold_method(receiver, func.attr, args, kwargs)
        name = self.resolve(func)
        if name is None:
            return UNKNOWN
        return fold_function(name, args, kwargs)

    def _fold_join_generator(self, node: ast.Call, d: int) -> Any:
        """"".join(chr(c) for c in [115, 111]) and the like: one generator over a constant sequence."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1):
            return UNKNOWN
        sep = self.fold(func.value, d)
        gen = node.args[0]
        if not isinstance(sep, (str, bytes)) or not isinstance(gen, (ast.GeneratorExp, ast.ListComp)):
            return UNKNOWN
        if len(gen.generators) != 1 or gen.generators[0].ifs or not isinstance(gen.generators[0].target, ast.Name):
            return UNKNOWN
        seq = self.fold(gen.generators[0].iter, d)
        if not isinstance(seq, (list, str, bytes)) or len(seq) > MAX_COMPREHENSION_ITEMS:
            return UNKNOWN
        var = gen.generators[0].target.id
        saved = self.constants.get(var, UNKNOWN)
        out = []
        try:
            for item in seq:
                self.constants[var] = item
                value = self.fold(gen.elt, d)
                if value is UNKNOWN:
                    return UNKNOWN
                out.append(value)
        finally:
            if saved is UNKNOWN:
                self.constants.pop(var, None)
            else:
                self.constants[var] = saved
        return fold_method(sep, "join", [out], {})


# --- helpers --------------------------------------------------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def bounded(v: Any) -> Any:
    if isinstance(v, (str, bytes)) and len(v) > MAX_FOLD_CHARS:
        return UNKNOWN
    if is_int(v) and v.bit_length() > MAX_INT_BITS:
        return UNKNOWN
    return v


def _safe(fn: Any) -> Any:
    try:
        return bounded(fn())
    except (ValueError, TypeError, binascii.Error, LookupError, OverflowError, UnicodeError,
            zlib.error, OSError, EOFError, lzma.LZMAError, AttributeError, MemoryError):
        return UNKNOWN


def _fold_unary(op: ast.unaryop, operand: Any) -> Any:
    if not is_int(operand):
        return UNKNOWN
    return -operand if isinstance(op, ast.USub) else ~operand if isinstance(op, ast.Invert) else operand


def _fold_int(op: ast.operator, left: int, right: int) -> Any:
    """+, -, *, ^ on integers, refused before the result could exceed MAX_INT_BITS."""
    bits = max(left.bit_length(), right.bit_length())
    if isinstance(op, ast.Mult):
        return left * right if left.bit_length() + right.bit_length() <= MAX_INT_BITS else UNKNOWN
    if bits >= MAX_INT_BITS:
        return UNKNOWN
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.BitXor):
        return left ^ right
    return UNKNOWN


def preview(value: Any) -> str:
    """A short repr, built without ever making the whole repr of a large value."""
    if isinstance(value, (str, bytes)) and len(value) > 120:
        return repr(value[:120]) + "..."
    if isinstance(value, (list, tuple, dict)):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "..."


_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "replace", "format", "encode", "decode", "title",
                "capitalize", "swapcase", "casefold", "zfill", "removeprefix", "removesuffix", "translate"}


def fold_method(receiver: Any, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if method == "join" and isinstance(receiver, (str, bytes)) and len(args) == 1:
        items = args[0]
        if isinstance(items, (list, tuple)) and all(isinstance(i, type(receiver)) for i in items):
            if sum(len(i) + len(receiver) for i in items) > MAX_FOLD_CHARS:
                return UNKNOWN
            return _safe(lambda: receiver.join(items))
        return UNKNOWN
    if isinstance(receiver, (str, bytes)) and method in _STR_METHODS:
        if not _output_bounded(receiver, method, args, kwargs):
            return UNKNOWN
        return _safe(lambda: getattr(receiver, method)(*args, **kwargs))
    return UNKNOWN


def _output_bounded(receiver: str | bytes, method: str, args: list[Any], kwargs: dict[str, Any]) -> bool:
    """Refuse the calls whose result could be far larger than their inputs (a folding bomb)."""
    if method == "zfill":
        return bool(args) and is_int(args[0]) and args[0] <= MAX_FOLD_CHARS
    if method == "replace":
        new = args[1] if len(args) > 1 else ""
        return isinstance(new, (str, bytes)) and (len(receiver) + 1) * max(1, len(new)) <= MAX_FOLD_CHARS
    if method == "format":   # "{:>999999999}" pads; only plain fields of scalar constants are folded
        return isinstance(receiver, str) and ":" not in receiver and "!" not in receiver and \
            all(isinstance(a, (str, float)) or (is_int(a) and a.bit_length() < 1024)
                for a in [*args, *kwargs.values()])
    return True


def decompress(kind: str, data: Any) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        return UNKNOWN
    try:
        if kind == "zlib":
            out = zlib.decompressobj().decompress(data, MAX_FOLD_CHARS + 1)
        elif kind == "gzip":
            out = zlib.decompressobj(wbits=31).decompress(data, MAX_FOLD_CHARS + 1)
        elif kind == "bz2":
            out = bz2.BZ2Decompressor().decompress(data, max_length=MAX_FOLD_CHARS + 1)
        else:
            out = lzma.LZMADecompressor().decompress(data, max_length=MAX_FOLD_CHARS + 1)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return UNKNOWN
    return bounded(out)


def lenient_b64decode(data: str | bytes, altchars: bytes | None = None) -> bytes:
    """base64 as b64decode(validate=False) reads it: bytes outside the alphabet ("$", spaces) are dropped."""
    raw = data.encode("latin-1", "replace") if isinstance(data, str) else bytes(data)
    if altchars:
        raw = raw.translate(bytes.maketrans(altchars, b"+/"))
    compact = _B64_ALPHABET.sub(b"", raw).rstrip(b"=")
    compact = compact[: len(compact) - len(compact) % 4] if len(compact) % 4 == 1 else compact
    return base64.b64decode(compact + b"=" * (-len(compact) % 4))


_DECODERS = {
    "base64.b64decode": lambda a: lenient_b64decode(a[0], a[1] if len(a) > 1 else None),
    "base64.standard_b64decode": lambda a: lenient_b64decode(a[0]),
    "base64.urlsafe_b64decode": lambda a: lenient_b64decode(a[0], b"-_"),
    "base64.b32decode": lambda a: base64.b32decode(a[0]),
    "base64.b16decode": lambda a: base64.b16decode(a[0], casefold=True),
    "base64.b85decode": lambda a: base64.b85decode(a[0]),
    "base64.a85decode": lambda a: base64.a85decode(a[0]),
    "base64.decodebytes": lambda a: lenient_b64decode(a[0]),
    "binascii.unhexlify": lambda a: binascii.unhexlify(a[0]),
    "binascii.a2b_hex": lambda a: binascii.a2b_hex(a[0]),
    "binascii.a2b_base64": lambda a: lenient_b64decode(a[0]),
    "chr": lambda a: chr(a[0]),
    "str": lambda a: a[0] if isinstance(a[0], str) else (a[0].decode(*a[1:]) if isinstance(a[0], bytes) and
                                                             len(a) > 1 else str(a[0])),
    "bytes": lambda a: bytes(a[0]) if isinstance(a[0], list) else a[0].encode(*a[1:]),
    "bytearray": lambda a: bytes(a[0]) if isinstance(a[0], list) else a[0].encode(*a[1:]),
}
_SAFE_CODECS = {"rot13", "rot_13", "rot-13", "hex", "hex_codec", "base64", "base64_codec", "base_64", "utf-8", "utf8",
                "latin-1", "latin1", "ascii", "unicode_escape", "zlib", "zlib_codec", "bz2", "bz2_codec"}


def fold_function(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if name in _DECODERS and args:
        if name == "str" and is_int(args[0]) and args[0].bit_length() > 1024:
            return UNKNOWN
        return _safe(lambda: _DECODERS[name](args))
    if name in ("zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress") and args:
        return decompress(name.split(".")[0], args[0])
    if name in ("codecs.decode", "codecs.encode") and args:
        encoding = str(args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")).lower()
        if encoding not in _SAFE_CODECS:
            return UNKNOWN
        if encoding in ("zlib", "zlib_codec", "bz2", "bz2_codec") and name == "codecs.decode":
            return decompress(encoding.split("_")[0], args[0])
        if encoding.startswith("base") and name == "codecs.decode":
            return _safe(lambda: lenient_b64decode(args[0]))
        return _safe(lambda: getattr(codecs, name.split(".")[1])(args[0], encoding))
    return UNKNOWN
