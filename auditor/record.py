"""`record`: the decorator of every typed record, `dataclasses.dataclass`'s behaviour without its set-up cost.

On Python 3.11 `dataclasses` compiles every method it writes (`exec` of generated source): __init__,
__repr__, __eq__, __hash__ and, when frozen, __setattr__ and __delattr__, ~1.3 ms a frozen class. Importing it
also imports `inspect` (and with it ast, dis and tokenize). For a 200-file scan that was ~130 M of its ~690 M
instructions (bench/RESULTS.md). Here nothing is compiled when a class is defined:
  - __repr__, __eq__, __hash__ and the frozen guards are shared functions over the class's field names;
  - __init__ is generated and compiled the first time the class is instantiated, so a class an audit never
    instantiates costs nothing, and one it does gets a real function (Python's own argument errors, full speed).
The rules are the standard library's (field order with inheritance, ClassVar, defaults and default factories,
init=False with __post_init__, frozen inheritance, slots, which __hash__ a class gets); tests/test_record.py
builds each shape with both decorators and compares them. Use this module's `field`, `fields`, `replace` and
`asdict` on a record: the `dataclasses` functions do not know it.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

R = TypeVar("R")
T = TypeVar("T")

_FIELDS = "__record_fields__"     # class attribute: {name: Field} in __init__ order, inherited ones first
_FROZEN = "__record_frozen__"


class _Sentinel:
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


MISSING: Any = _Sentinel("MISSING")      # no default given
_FACTORY: Any = _Sentinel("<factory>")   # __init__'s default for a field whose value comes from its default_factory


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen record."""


class Field:
    """One field of a record, as `dataclasses.Field`: name, type (its annotation's text) and its options."""
    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "compare", "hash")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool, compare: bool,
                 hash: bool | None) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name, self.type = "", ""
        self.default, self.default_factory = default, default_factory
        self.init, self.repr, self.compare, self.hash = init, repr, compare, hash

    def __repr__(self) -> str:
        return (f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r}, "
                f"default_factory={self.default_factory!r}, init={self.init}, repr={self.repr})")


@overload
def field(*, default: T, init: bool = True, repr: bool = True, compare: bool = True,
          hash: bool | None = None) -> T: ...
@overload
def field(*, default_factory: Callable[[], T], init: bool = True, repr: bool = True, compare: bool = True,
          hash: bool | None = None) -> T: ...
@overload
def field(*, init: bool = True, repr: bool = True, compare: bool = True, hash: bool | None = None) -> Any: ...


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True, repr: bool = True,
          compare: bool = True, hash: bool | None = None) -> Any:
    """A field's options, as `dataclasses.field`."""
    return Field(default, default_factory, init, repr, compare, hash)


@overload
def record(cls: type[R], /) -> type[R]: ...
@overload
def record(*, frozen: bool = False, eq: bool = True, slots: bool = False) -> Callable[[type[R]], type[R]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: type[Any] | None = None, /, *, frozen: bool = False, eq: bool = True, slots: bool = False) -> Any:
    """A record class: `@record`, `@record(frozen=True)`, `@record(eq=False)`, `@record(frozen=True, slots=True)`."""
    def wrap(cls: type[R]) -> type[R]:
        body = dict(cls.__dict__)        # what the class itself defines, before anything is added
        fields = _collect(cls, frozen)
        if slots:
            cls = _with_slots(cls, fields)
        setattr(cls, _FIELDS, fields)
        setattr(cls, _FROZEN, frozen)
        for name, method in _methods(cls, body, tuple(fields.values()), eq=eq, frozen=frozen).items():
            setattr(cls, name, method)
        return cls
    return wrap if cls is None else wrap(cls)


def is_record(obj: Any) -> bool:
    """Whether `obj` is a record class or an instance of one."""
    return hasattr(obj if isinstance(obj, type) else type(obj), _FIELDS)


def fields(class_or_instance: Any) -> tuple[Field, ...]:
    """A record's fields in __init__ order, as `dataclasses.fields`."""
    try:
        return tuple(getattr(class_or_instance, _FIELDS).values())
    except AttributeError:
        raise TypeError("fields() takes a record class or instance") from None


def replace(obj: R, /, **changes: Any) -> R:
    """A copy of record `obj` with `changes`, as `dataclasses.replace` (built through __init__)."""
    for f in fields(obj):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def asdict(obj: Any) -> dict[str, Any]:
    """Record `obj` as a dict, nested records, lists, tuples and dicts converted, as `dataclasses.asdict`."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError("asdict() takes a record instance")
    return _as_plain(obj)   # type: ignore[no-any-return]


def _as_plain(value: Any) -> Any:
    if is_record(value) and not isinstance(value, type):
        return {f.name: _as_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):     # a namedtuple takes its values positionally
        return type(value)(*[_as_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_as_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_as_plain(k), _as_plain(v)) for k, v in value.items())
    return copy.deepcopy(value)


def _collect(cls: type, frozen: bool) -> dict[str, Field]:
    """The class's fields: its record bases' (the farthest first), then its own annotations in order."""
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        if _FIELDS in base.__dict__:
            _check_frozen_base(cls, base, frozen)
            fields.update(base.__dict__[_FIELDS])
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        fields[name] = _own_field(cls, name, annotation)
    _check_defaults_order(cls, fields)
    return fields


def _check_frozen_base(cls: type, base: type, frozen: bool) -> None:
    if base.__dict__[_FROZEN] and not frozen:
        raise TypeError(f"cannot inherit non-frozen record {cls.__name__} from a frozen one")
    if frozen and not base.__dict__[_FROZEN]:
        raise TypeError(f"cannot inherit frozen record {cls.__name__} from a non-frozen one")


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    text = text.strip()
    return text in ("ClassVar", "typing.ClassVar") or text.startswith(("ClassVar[", "typing.ClassVar["))


def _own_field(cls: type, name: str, annotation: Any) -> Field:
    """The field of one annotation; the class attribute keeps a plain default, as the standard library's."""
    value = cls.__dict__.get(name, MISSING)
    f = value if isinstance(value, Field) else field(default=value)
    f.name, f.type = name, annotation
    if isinstance(value, Field):
        if f.default is MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, f.default)
    if f.default is not MISSING and type(f.default).__hash__ is None:   # the standard library's test of mutable
        raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
    return f


def _check_defaults_order(cls: type, fields: dict[str, Field]) -> None:
    seen_default = False
    for f in fields.values():
        if not f.init:
            continue
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument in {cls.__name__}")
        seen_default = seen_default or has_default


def _with_slots(cls: type, fields: dict[str, Field]) -> type:
    """The class rebuilt with __slots__ for its own fields (as the standard library does: slots need a new class)."""
    namespace = dict(cls.__dict__)
    inherited = {name for base in cls.__mro__[1:-1] for name in getattr(base, "__slots__", ())}
    namespace["__slots__"] = tuple(name for name in fields if name not in inherited)
    for name in (*fields, "__dict__", "__weakref__"):
        namespace.pop(name, None)
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _methods(cls: type, body: dict[str, Any], fields: tuple[Field, ...], *, eq: bool,
             frozen: bool) -> dict[str, Any]:
    """The methods the standard decorator would add: none that the class defines itself."""
    methods: dict[str, Any] = {}
    if "__match_args__" not in body:
        methods["__match_args__"] = tuple(f.name for f in fields if f.init)
    if "__init__" not in body:
        methods["__init__"] = _lazy_init(cls)
    if "__repr__" not in body:
        methods["__repr__"] = _repr_of(tuple(f.name for f in fields if f.repr))
    if frozen:
        methods.update(_frozen_guards(cls, body, frozenset(f.name for f in fields)))
        if "__slots__" in cls.__dict__:      # unpickling and copy.copy set a slot through __setattr__
            methods["__getstate__"], methods["__setstate__"] = _getstate, _setstate
    if eq:
        methods.update(_comparisons(body, fields, frozen))
    return methods


def _comparisons(body: dict[str, Any], fields: tuple[Field, ...], frozen: bool) -> dict[str, Any]:
    """__eq__ over the compared fields, and the __hash__ the standard library's rule gives: an explicit one stays,
    otherwise a frozen record hashes its fields and a mutable one is unhashable."""
    methods: dict[str, Any] = {}
    if "__eq__" not in body:
        methods["__eq__"] = _eq_of(_values_of(tuple(f.name for f in fields if f.compare)))
    explicit_hash = body.get("__hash__") is not None or ("__hash__" in body and "__eq__" not in body)
    if not explicit_hash:
        hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        methods["__hash__"] = _hash_of(_values_of(hashed)) if frozen else None
    return methods


def _lazy_init(cls: type) -> Callable[..., None]:
    """An __init__ that compiles the class's own on its first call and puts it in its place."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled = _compile_init(cls)
        cls.__init__ = compiled      # type: ignore[misc]
        compiled(self, *args, **kwargs)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _compile_init(cls: type) -> Callable[..., None]:
    """The __init__ the standard library writes: the same parameters, defaults and assignments, then __post_init__.
    Its source holds only the class's field names (identifiers), never a value."""
    frozen, fields = cls.__dict__[_FROZEN], cls.__dict__[_FIELDS]
    names = _Names(fields)
    me, factory, setter = names.free("self"), names.free("__record_factory__"), names.free("__record_set__")
    namespace: dict[str, Any] = {factory: _FACTORY, setter: object.__setattr__}
    params, lines = [me], []
    for f in fields.values():
        value = _init_value(f, namespace, params, names, factory, "__slots__" in cls.__dict__)
        if value is not None:
            lines.append(f"{setter}({me}, {f.name!r}, {value})" if frozen else f"{me}.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        lines.append(f"{me}.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + "".join(f"    {line}\n" for line in lines or ["pass"])
    exec(source, namespace)   # noqa: S102 - our own field names only, as dataclasses does
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**{f.name: f.type for f in fields.values() if f.init}, "return": None}
    return init


class _Names:
    """Names for __init__'s own helpers that no field has (a parameter would hide a helper of the same name)."""

    def __init__(self, fields: dict[str, Field]) -> None:
        self.taken = set(fields)

    def free(self, name: str) -> str:
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def _init_value(f: Field, namespace: dict[str, Any], params: list[str], names: _Names, factory: str,
                slots: bool) -> str | None:
    """The expression __init__ assigns to field `f` (None: it assigns nothing); adds `f`'s parameter."""
    default = names.free(f"__record_default_{f.name}__")
    if f.default_factory is not MISSING:
        namespace[default] = f.default_factory
        if not f.init:
            return f"{default}()"
        params.append(f"{f.name}={factory}")
        return f"{default}() if {f.name} is {factory} else {f.name}"
    if not f.init:
        if f.default is MISSING or not slots:
            return None   # the class attribute (or __post_init__) gives its value
        namespace[default] = f.default    # a slot has no class attribute to fall back on
        return default
    if f.default is MISSING:
        params.append(f.name)
    else:
        namespace[default] = f.default
        params.append(f"{f.name}={default}")
    return f.name


def _frozen_guards(cls: type, body: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """As the standard library's: no field can change, and no attribute at all on an instance of `cls` itself."""
    for name in ("__setattr__", "__delattr__"):
        if name in body:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name in names or type(self) is cls:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)   # type: ignore[arg-type]  # mypy narrows cls by the `is` test

    def __delattr__(self: Any, name: str) -> None:
        if name in names or type(self) is cls:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)   # type: ignore[arg-type]
    return {"__setattr__": __setattr__, "__delattr__": __delattr__}


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(fields(self), state, strict=True):
        object.__setattr__(self, f.name, value)


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
