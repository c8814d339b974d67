"""`record`: `dataclasses.dataclass` with the same behaviour and a cheaper set-up.

On Python 3.11 the standard decorator compiles every method it writes (`exec` of generated source):
__init__, __repr__, __eq__, __hash__ and, when frozen, __setattr__ and __delattr__. That is ~1.3 ms per
frozen class on a 2-core machine, and the ~50 classes an audit imports took 40-65 ms of its ~240 ms (28-34 ms
with `record`, bench/RESULTS.md). Here the standard library still writes __init__ and the frozen guards
(they need the class's field names in their code), and __repr__, __eq__ and __hash__ are shared functions
over an `operator.attrgetter` of the fields: no compiling, the same results (tests/test_record.py compares
them with the standard decorator's).
`dataclasses.fields`, `replace`, `asdict` and `is_dataclass` work unchanged on a record.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

R = TypeVar("R")


@overload
def record(cls: type[R], /) -> type[R]: ...
@overload
def record(*, frozen: bool = False, eq: bool = True, slots: bool = False) -> Callable[[type[R]], type[R]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[Any] | None = None, /, *, frozen: bool = False, eq: bool = True, slots: bool = False) -> Any:
    """A dataclass: `@record`, `@record(frozen=True)`, `@record(eq=False)`, `@record(frozen=True, slots=True)`."""
    def wrap(cls: type[R]) -> type[R]:
        body = dict(cls.__dict__)        # what the class itself defines, before the decorator adds to it
        made = dataclasses.dataclass(repr=False, eq=False, frozen=frozen, slots=slots)(cls)
        for name, method in _methods(made, body, eq=eq, frozen=frozen).items():
            setattr(made, name, method)
        return made
    return wrap if cls is None else wrap(cls)


def _methods(cls: type, body: dict[str, Any], *, eq: bool, frozen: bool) -> dict[str, Any]:
    """The methods the standard decorator would add: none that the class defines itself."""
    fields = dataclasses.fields(cls)
    methods: dict[str, Any] = {}
    if "__repr__" not in body:
        methods["__repr__"] = _repr_of(tuple(f.name for f in fields if f.repr))
    if not eq:
        return methods
    if "__eq__" not in body:
        methods["__eq__"] = _eq_of(_values_of(tuple(f.name for f in fields if f.compare)))
    # the standard library's rule: an explicit __hash__ stays; otherwise frozen hashes its fields, mutable is unhashable
    explicit_hash = body.get("__hash__") is not None or ("__hash__" in body and "__eq__" not in body)
    if not explicit_hash:
        hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        methods["__hash__"] = _hash_of(_values_of(hashed)) if frozen else None
    return methods


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (attrgetter returns a bare value for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _repr_of(names: tuple[str, ...]) -> Callable[[Any], str]:
    @recursive_repr()     # as the standard library's: a record that contains itself shows "..."
    def __repr__(self: Any) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({values})"
    return __repr__


def _eq_of(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented
    return __eq__


def _hash_of(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))
    return __hash__
