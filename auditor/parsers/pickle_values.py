"""The symbols the static pickle machine pushes instead of objects, and their bounded rendering.

A global becomes a `Ref`, a call an `Obj` that remembers its callee and arguments; nothing is ever
imported or called. Every walk over these values (rendering, hashing of dict keys) is bounded in
depth and items, because a hostile stream can nest tuples a million levels deep and C-level
recursion over such a value (tuple hash, repr) overflows the process stack.
"""
from __future__ import annotations

import itertools
from typing import Any

from auditor.record import record

MAX_KEY_NODES = 10_000        # values walked to decide whether a dict key can be hashed safely
MAX_KEY_DEPTH = 200           # deeper keys are kept unhashed (hash() of them would recurse in C)
RENDER_DEPTH = 12
RENDER_ITEMS = 20
NON_STRING_NAME = "<non-string name>"   # Ref.raw: STACK_GLOBAL on a symbol (a call's result may be a str)
NOT_STR_NAME = "<not a str>"            # Ref.raw: STACK_GLOBAL on a literal int, bytes, ...: the loader refuses
NOT_UTF8_NAME = "<not UTF-8>"           # Ref.raw: GLOBAL/INST bytes the loader fails to decode


class Stop(Exception):
    """STOP reached: the stream is complete."""


class Broken(Exception):
    """The stream is malformed where a real loader would fail too."""


class Truncated(Broken):
    """The bytes ended before the stream did: a cut pickle, or the head of a longer one."""

    def __init__(self, message: str, needed: int) -> None:
        super().__init__(message)
        self.needed = needed      # the offset the stream had to read up to


class Limit(Exception):
    """An analysis bound was hit."""


class _Mark:
    def __repr__(self) -> str:
        return "<mark>"


MARK = _Mark()


@record(eq=False)
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

    @property
    def importable(self) -> bool:
        """Whether a loader could import this: a dotted name of identifiers, or a name the machine could
        not read (a symbolic value may be a str at load time). Bytes that fail to decode, or a "module"
        like ") 2024 Example Labs", never import anything."""
        if self.raw == NON_STRING_NAME:
            return True
        return self.raw not in (NOT_STR_NAME, NOT_UTF8_NAME) and all(part.isidentifier()
                                                                     for part in self.qualname.split("."))


@record(eq=False)
class Obj:
    """The result of a call, an instantiation, a persistent id or an extension code."""
    kind: str                     # reduce, newobj, newobj_ex, inst, obj, persid, ext, buffer
    callee: Any
    args: Any
    op: int
    pos: int
    kwargs: Any = None
    state: Any = None             # the last BUILD state applied to it


@record(frozen=True)
class Call:
    kind: str
    callee: Any
    args: Any
    op: int
    pos: int
    kwargs: Any = None


@record(frozen=True)
class Build:
    target: Any
    state: Any
    op: int
    pos: int


@record(eq=False)
class Unhashable:
    """A dict key that cannot be (or must not be) hashed: kept by identity."""
    value: Any

    def __repr__(self) -> str:
        return render(self.value)


def safe_key(value: Any) -> Any:
    """`value` when hashing it is cheap and cannot recurse deeply, else an identity wrapper."""
    if isinstance(value, tuple) and not _shallow(value):
        return Unhashable(value)
    try:
        hash(value)
        return value
    except TypeError:
        return Unhashable(value)


def _shallow(value: tuple[Any, ...]) -> bool:
    """Whether a tuple nests at most MAX_KEY_DEPTH levels in at most MAX_KEY_NODES values (iterative)."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while todo:
        item, depth = todo.pop()
        nodes += 1
        if nodes > MAX_KEY_NODES or depth > MAX_KEY_DEPTH:
            return False
        if isinstance(item, tuple):
            todo.extend((child, depth + 1) for child in item)
    return True


def render(value: Any, budget: int = 300) -> str:
    """A short, bounded, cycle-safe Python-like rendering of a symbolic value (never walks more than
    RENDER_ITEMS items of a container or RENDER_DEPTH levels, whatever the value's size)."""
    out: list[str] = []
    _render(value, out, [budget], (), 0)
    text = "".join(out)
    return text if len(text) <= budget else text[:budget] + "..."


def _render(value: Any, out: list[str], budget: list[int], seen: tuple[int, ...], depth: int) -> None:
    if budget[0] <= 0 or depth > RENDER_DEPTH:
        out.append("...")
        return
    if isinstance(value, Obj):
        _render_obj(value, out, budget, seen, depth)
    elif isinstance(value, (list, tuple, dict)):
        _render_container(value, out, budget, seen, depth)
    else:
        piece = _scalar(value)
        budget[0] -= len(piece)
        out.append(piece)


def _scalar(value: Any) -> str:
    if isinstance(value, Ref):
        return value.qualname
    if isinstance(value, (bytes, str)):
        return repr(value[:200]) + ("..." if len(value) > 200 else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4000:
        return f"<int of {value.bit_length()} bits>"
    if isinstance(value, (int, float, bool, complex)) or value is None or value is MARK:
        return repr(value)
    if isinstance(value, Unhashable):
        return "<unhashable key>"
    return f"<{type(value).__name__}>"


def _render_obj(value: Obj, out: list[str], budget: list[int], seen: tuple[int, ...], depth: int) -> None:
    if id(value) in seen:
        out.append("<cycle>")
        return
    seen = (*seen, id(value))
    if value.kind == "persid":
        out.append("persistent_id(")
        _render(value.args, out, budget, seen, depth + 1)
        out.append(")")
        return
    if value.kind in ("ext", "buffer"):
        out.append(f"<extension code {value.args}>" if value.kind == "ext" else "<out-of-band buffer>")
        return
    _render(value.callee, out, budget, seen, depth + 1)
    out.append("(")
    args = value.args if isinstance(value.args, tuple) else (value.args,)
    _render_items(args, len(args), False, out, budget, seen, depth)
    out.append(")")


def _render_container(value: Any, out: list[str], budget: list[int], seen: tuple[int, ...], depth: int) -> None:
    if id(value) in seen:
        out.append("<cycle>")
        return
    seen = (*seen, id(value))
    opener, closer = ("[", "]") if isinstance(value, list) else ("(", ")") if isinstance(value, tuple) else ("{", "}")
    out.append(opener)
    is_dict = isinstance(value, dict)
    _render_items(value.items() if is_dict else value, len(value), is_dict, out, budget, seen, depth)
    if isinstance(value, tuple) and len(value) == 1:
        out.append(",")
    out.append(closer)


def _render_items(items: Any, count: int, pairs: bool, out: list[str], budget: list[int],
                  seen: tuple[int, ...], depth: int) -> None:
    for i, item in enumerate(itertools.islice(items, RENDER_ITEMS)):
        if i:
            out.append(", ")
        if pairs:
            _render(item[0], out, budget, seen, depth + 1)
            out.append(": ")
            _render(item[1], out, budget, seen, depth + 1)
        else:
            _render(item, out, budget, seen, depth + 1)
        if budget[0] <= 0:
            break
    if count > RENDER_ITEMS:
        out.append(f", ... {count - RENDER_ITEMS} more")
