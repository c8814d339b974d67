"""auditor.record behaves as dataclasses.dataclass: each class here is built by both and compared."""
from __future__ import annotations

import dataclasses
import importlib
import pickle
import pkgutil
from dataclasses import FrozenInstanceError, field
from typing import Any

import pytest

import auditor
from auditor import rules
from auditor.record import record

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {}, "frozen": {"frozen": True}, "no-eq": {"eq": False}, "frozen-no-eq": {"frozen": True, "eq": False},
    "frozen-slots": {"frozen": True, "slots": True}, "slots": {"slots": True},
}


def _short(value: object) -> str:
    """repr without the test function's `<locals>.` prefix, which differs between the two classes' makers."""
    return repr(value).replace(type(value).__qualname__, type(value).__name__)


def _both(make: Any, **params: Any) -> tuple[type, type]:
    return make(record(**params)), make(dataclasses.dataclass(**params))


def _point(decorate: Any) -> type:
    @decorate
    class Point:
        x: int
        y: tuple[str, ...] = ()
        note: str = field(default="", compare=False, repr=False)
        tags: dict[str, int] = field(default_factory=dict, hash=False)
    return Point


@pytest.mark.parametrize("shape", SHAPES)
def test_repr_eq_hash_and_frozenness_match_the_standard_decorator(shape: str) -> None:
    params = SHAPES[shape]
    ours, theirs = _both(_point, **params)
    samples = [dict(x=1), dict(x=1, y=("a",)), dict(x=1, note="other"), dict(x=2, tags={"k": 1})]
    for a in samples:
        assert _short(ours(**a)) == _short(theirs(**a))
        for b in samples:
            assert (ours(**a) == ours(**b)) == (theirs(**a) == theirs(**b))
    assert ours(x=1) != theirs(x=1)          # another class: never equal, as the standard library's
    hashable = getattr(theirs, "__hash__", None) is not None
    assert (getattr(ours, "__hash__", None) is not None) == hashable
    if hashable and params.get("eq", True):
        assert hash(ours(x=1, y=("a",), note="n")) == hash(ours(x=1, y=("a",)))  # note has compare=False
    if params.get("frozen"):
        with pytest.raises(FrozenInstanceError):
            ours(x=1).x = 2                  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError):
            del ours(x=1).x                  # type: ignore[misc]
    else:
        point = ours(x=1)
        point.x = 2
        assert point == ours(x=2) if params.get("eq", True) else point.x == 2


def test_the_dataclasses_module_works_on_a_record() -> None:
    ours, _ = _both(_point, frozen=True)
    point = ours(x=1, y=("a",))
    assert dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(point)] == ["x", "y", "note", "tags"]
    assert dataclasses.replace(point, x=5) == ours(x=5, y=("a",))
    assert dataclasses.asdict(point) == {"x": 1, "y": ("a",), "note": "", "tags": {}}
    finding = rules.finding("SCANNER-ERROR", scanner="x", evidence="e")   # a real record pickles (process pools, Ray)
    assert pickle.loads(pickle.dumps(finding)) == finding and hash(pickle.loads(pickle.dumps(finding))) == hash(finding)
    assert ours.__match_args__ == ("x", "y", "note", "tags")


def test_methods_a_class_defines_itself_are_kept() -> None:
    def make(decorate: Any) -> type:
        @decorate
        class Named:
            name: str

            def __repr__(self) -> str:
                return f"<{self.name}>"

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Named) and other.name.lower() == self.name.lower()

            def __hash__(self) -> int:
                return hash(self.name.lower())
        return Named
    ours, theirs = _both(make, frozen=True)
    for cls in (ours, theirs):
        assert repr(cls("A")) == "<A>" and cls("A") == cls("a") and hash(cls("A")) == hash(cls("a"))


def test_a_mutable_record_with_its_own_eq_stays_unhashable_as_the_standard_library_makes_it() -> None:
    def make(decorate: Any) -> type:
        @decorate
        class Box:
            value: int

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Box) and other.value == self.value
        return Box
    ours, theirs = _both(make)
    assert ours.__hash__ is None and theirs.__hash__ is None


def test_inherited_fields_count_and_a_record_that_contains_itself_has_a_repr() -> None:
    def make(decorate: Any) -> tuple[type, type]:
        @decorate
        class Base:
            a: int

        @decorate
        class Child(Base):
            b: list[Any] = field(default_factory=list)
        return Base, Child
    (_, ours), (_, theirs) = make(record), make(dataclasses.dataclass)
    assert ours(1, [2]) == ours(1, [2]) and ours(1, [2]) != ours(2, [2])
    mine, standard = ours(1), theirs(1)
    mine.b.append(mine)
    standard.b.append(standard)
    assert _short(mine) == _short(standard) == "Child(a=1, b=[...])"


def test_every_class_of_the_package_is_a_record_not_a_bare_dataclass() -> None:
    """A bare @dataclass would still work: this keeps the start-up saving from eroding one class at a time."""
    bare = []
    for info in pkgutil.walk_packages(auditor.__path__, "auditor."):
        if info.name.endswith("__main__") or info.name.startswith("auditor.runtime.child_"):
            continue      # the entry point runs the command; the child scripts run in the sandbox, not here
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and value.__module__ == module.__name__ and dataclasses.is_dataclass(value)
                    and value.__dataclass_params__.repr):   # type: ignore[attr-defined]
                bare.append(f"{module.__name__}.{value.__qualname__}")
    assert bare == []
