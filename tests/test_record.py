"""auditor.record behaves as dataclasses.dataclass: each class here is built by both and compared."""
from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytest

import auditor
from auditor import record as records
from auditor import rules


class Kit(NamedTuple):
    """One side of a comparison: a decorator and its field(), fields(), replace() and asdict()."""
    decorate: Any
    field: Any
    fields: Any
    replace: Any
    asdict: Any
    frozen_error: type[Exception]


OURS = Kit(records.record, records.field, records.fields, records.replace, records.asdict,
           records.FrozenInstanceError)
THEIRS = Kit(dataclasses.dataclass, dataclasses.field, dataclasses.fields, dataclasses.replace, dataclasses.asdict,
             dataclasses.FrozenInstanceError)

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {}, "frozen": {"frozen": True}, "no-eq": {"eq": False}, "frozen-no-eq": {"frozen": True, "eq": False},
    "frozen-slots": {"frozen": True, "slots": True}, "slots": {"slots": True},
}


def _short(value: object) -> str:
    """repr without the test function's `<locals>.` prefix, which differs between the two classes' makers."""
    return repr(value).replace(type(value).__qualname__, type(value).__name__)


def _both(make: Any, **params: Any) -> tuple[Any, Any]:
    def side(kit: Kit) -> Any:
        return make(kit, kit.decorate(**params) if params else kit.decorate)
    return side(OURS), side(THEIRS)


def _error(call: Any, *args: Any, **kwargs: Any) -> tuple[type[BaseException], str] | None:
    try:
        call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test compares whatever either side raises
        return type(exc), str(exc).replace("Point", "<cls>").replace("point", "<cls>")
    return None


def _point(kit: Kit, decorate: Any) -> type:
    @decorate
    class Point:
        x: int
        y: tuple[str, ...] = ()
        note: str = kit.field(default="", compare=False, repr=False)
        tags: dict[str, int] = kit.field(default_factory=dict, hash=False)
        KIND: ClassVar[str] = "point"
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
        assert issubclass(records.FrozenInstanceError, AttributeError)
        for kit, cls in ((OURS, ours), (THEIRS, theirs)):
            with pytest.raises(kit.frozen_error, match="cannot assign to field 'x'"):
                cls(x=1).x = 2
            with pytest.raises(kit.frozen_error, match="cannot delete field 'x'"):
                del cls(x=1).x
        with pytest.raises(records.FrozenInstanceError):
            ours(x=1).other = 2     # nor a new attribute (3.11's frozen slots dataclass raises TypeError here)
        if not params.get("slots"):
            for cls in (ours, theirs):
                sub = type("Sub", (cls,), {})(x=1)     # a subclass that is no record may take new attributes
                sub.other = 2
                assert sub.other == 2
                with pytest.raises(AttributeError):
                    sub.x = 2
    else:
        point = ours(x=1)
        point.x = 2
        assert point == ours(x=2) if params.get("eq", True) else point.x == 2
    assert ("__dict__" in dir(ours(x=1))) == ("__dict__" in dir(theirs(x=1)))


@pytest.mark.parametrize("shape", SHAPES)
def test_init_takes_the_same_arguments_and_refuses_the_same_ones(shape: str) -> None:
    ours, theirs = _both(_point, **SHAPES[shape])
    assert str(inspect.signature(ours(1).__init__)) == str(inspect.signature(theirs(1).__init__))
    assert ours.__match_args__ == theirs.__match_args__ == ("x", "y", "note", "tags")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}), ((1, (), "", {}, 5), {}), ((1,), {"x": 2}), ((1,), {"z": 3}), ((), {"y": ()})]
    for args, kwargs in calls:
        assert _error(ours, *args, **kwargs) == _error(theirs, *args, **kwargs) is not None
    assert ours(1).tags is not ours(1).tags                  # a factory's value is made per instance
    assert records.asdict(ours(1, ("b",), "n", {"k": 2})) == records.asdict(ours(x=1, y=("b",), note="n", tags={"k": 2}))
    assert ours.KIND == "point" and "KIND" not in [f.name for f in records.fields(ours)]


def test_fields_may_take_any_name_the_generated_init_uses_itself() -> None:
    @records.record(frozen=True)
    class Odd:
        self: int
        __record_set__: int = 1
        __record_factory__: list[int] = records.field(default_factory=list)
        __record_default_self__: int = 3
    odd = Odd(5, 6, [7], 8)
    assert (odd.self, odd.__record_set__, odd.__record_factory__, odd.__record_default_self__) == (5, 6, [7], 8)
    assert Odd(0).__record_factory__ == [] and Odd(0).__record_set__ == 1


def test_init_is_compiled_on_the_first_instance_only() -> None:
    @records.record(frozen=True)
    class Never:
        a: int

    @records.record(frozen=True)
    class Once:
        a: int
        b: list[int] = records.field(default_factory=list)
    stub = Never.__init__
    assert "a" not in inspect.signature(stub).parameters            # not compiled: nothing instantiated it
    assert Once(1) == Once(1, []) and Once.__init__ is not stub
    assert list(inspect.signature(Once.__init__).parameters) == ["self", "a", "b"]
    assert Once.__init__.__qualname__.endswith("Once.__init__")


def test_fields_replace_and_asdict_match_the_dataclasses_functions() -> None:
    def make(kit: Kit, decorate: Any) -> tuple[type, type]:
        @decorate
        class Leaf:
            name: str
            weight: float = 1.0

        @decorate
        class Tree:
            root: Leaf
            branches: list[Any] = kit.field(default_factory=list)
            index: dict[str, Any] = kit.field(default_factory=dict)
            pair: tuple[Any, ...] = ()
        return Leaf, Tree
    for kit, (leaf, tree) in ((OURS, make(OURS, OURS.decorate)), (THEIRS, make(THEIRS, THEIRS.decorate))):
        t = tree(leaf("r"), [leaf("a"), [leaf("b", 2.0)]], {"k": leaf("c")}, (leaf("d"), 3))
        assert kit.asdict(t) == {"root": {"name": "r", "weight": 1.0},
                                 "branches": [{"name": "a", "weight": 1.0}, [{"name": "b", "weight": 2.0}]],
                                 "index": {"k": {"name": "c", "weight": 1.0}},
                                 "pair": ({"name": "d", "weight": 1.0}, 3)}
        assert kit.asdict(t)["branches"] is not t.branches       # copies, not the record's own lists
        changed = kit.replace(t, pair=(1,))
        assert changed.pair == (1,) and changed.root == t.root and changed is not t
        assert [(f.name, f.default) for f in kit.fields(leaf)] == [("name", dataclasses.MISSING
                                                                    if kit is THEIRS else records.MISSING),
                                                                   ("weight", 1.0)]
        with pytest.raises(TypeError):
            kit.fields(object())
        with pytest.raises(TypeError):
            kit.asdict(leaf)                                      # a class, not an instance
        with pytest.raises(TypeError):
            kit.replace(t, nonsense=1)
    assert records.is_record(OURS.decorate(type("A", (), {}))) and not records.is_record(object())


def test_an_init_false_field_is_set_by_post_init_and_refused_by_replace() -> None:
    def make(kit: Kit, decorate: Any) -> type:
        @decorate
        class Budgeted:
            size: int
            share: int = kit.field(init=False)
            spent: list[int] = kit.field(default_factory=list, init=False)

            def __post_init__(self) -> None:
                self.share = self.size * 2
        return Budgeted
    for kit, cls in zip((OURS, THEIRS), _both(make), strict=True):
        b = cls(3)
        assert (b.share, b.spent) == (6, [])
        assert kit.replace(b, size=4).share == 8
        with pytest.raises(ValueError, match="init=False"):
            kit.replace(b, share=1)


def test_an_init_false_default_is_the_value_with_slots_too() -> None:
    def make(kit: Kit, decorate: Any) -> type:
        @decorate
        class Counted:
            name: str
            count: int = kit.field(default=0, init=False)
        return Counted
    for shape in ("plain", "slots", "frozen-slots"):
        for cls in _both(make, **SHAPES[shape]):
            assert cls("a").count == 0 and "count" not in inspect.signature(cls).parameters


def test_a_class_the_standard_library_refuses_is_refused() -> None:
    def attempts(kit: Kit) -> list[Any]:
        def mutable_default() -> None:
            @kit.decorate
            class A:
                items: list[int] = []          # noqa: RUF012 - the mistake under test

        def default_before_required() -> None:
            @kit.decorate
            class B:
                a: int = 1
                b: int

        def frozen_from_mutable() -> None:
            @kit.decorate
            class Base:
                a: int

            @kit.decorate(frozen=True)
            class Child(Base):
                b: int = 0

        def both_defaults() -> None:
            kit.field(default=1, default_factory=int)

        def own_setattr_when_frozen() -> None:
            @kit.decorate(frozen=True)
            class C:
                a: int

                def __setattr__(self, name: str, value: Any) -> None: ...
        return [mutable_default, default_before_required, frozen_from_mutable, both_defaults, own_setattr_when_frozen]
    for ours, theirs in zip(attempts(OURS), attempts(THEIRS), strict=True):
        mine, standard = _error(ours), _error(theirs)
        assert mine is not None and standard is not None and mine[0] is standard[0], (mine, standard)


def test_methods_a_class_defines_itself_are_kept() -> None:
    def make(kit: Kit, decorate: Any) -> type:
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
    for cls in _both(make, frozen=True):
        assert repr(cls("A")) == "<A>" and cls("A") == cls("a") and hash(cls("A")) == hash(cls("a"))


def test_a_mutable_record_with_its_own_eq_stays_unhashable_as_the_standard_library_makes_it() -> None:
    def make(kit: Kit, decorate: Any) -> type:
        @decorate
        class Box:
            value: int

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Box) and other.value == self.value
        return Box
    ours, theirs = _both(make)
    assert ours.__hash__ is None and theirs.__hash__ is None


def test_inherited_fields_count_and_a_record_that_contains_itself_has_a_repr() -> None:
    def make(kit: Kit, decorate: Any) -> type:
        @decorate
        class Base:
            a: int
            z: int = 0

        @decorate
        class Child(Base):
            b: list[Any] = kit.field(default_factory=list)
            z: int = 9                                        # redefined: keeps its place, takes the new default

        class Plain(Child):                                   # a subclass that is no record inherits the methods
            pass
        return Plain
    ours, theirs = _both(make)
    assert [f.name for f in records.fields(ours)] == [f.name for f in dataclasses.fields(theirs)] == ["a", "z", "b"]
    assert ours(1, b=[2]) == ours(1, 9, [2]) and ours(1) != ours(2)
    mine, standard = ours(1), theirs(1)
    mine.b.append(mine)
    standard.b.append(standard)
    assert _short(mine) == _short(standard) == "Plain(a=1, z=9, b=[...])"


@records.record
class PlainPoint:
    x: int
    tags: dict[str, int] = records.field(default_factory=dict)
    note: str = records.field(default="", compare=False)


@records.record(slots=True)
class SlotPoint:
    x: int
    tags: dict[str, int] = records.field(default_factory=dict)
    note: str = records.field(default="", compare=False)


@records.record(frozen=True)
class FrozenPoint:
    x: int
    tags: dict[str, int] = records.field(default_factory=dict)
    note: str = records.field(default="", compare=False)


@records.record(frozen=True, slots=True)
class FrozenSlotPoint:
    x: int
    tags: dict[str, int] = records.field(default_factory=dict)
    note: str = records.field(default="", compare=False)


@pytest.mark.parametrize("cls", [PlainPoint, SlotPoint, FrozenPoint, FrozenSlotPoint])
def test_a_record_pickles_and_copies(cls: Any) -> None:
    point = cls(1, {"k": 1}, "n")
    assert hasattr(point, "__dict__") == (cls in (PlainPoint, FrozenPoint))
    for twin in (pickle.loads(pickle.dumps(point)), copy.copy(point), copy.deepcopy(point)):
        assert twin == point and twin.note == "n" and twin.tags == {"k": 1}
        if cls in (FrozenPoint, FrozenSlotPoint):
            with pytest.raises(records.FrozenInstanceError):
                twin.x = 3
    assert copy.deepcopy(point).tags is not point.tags
    finding = rules.finding("SCANNER-ERROR", scanner="x", evidence="e")   # a real record pickles (process pools, Ray)
    assert pickle.loads(pickle.dumps(finding)) == finding and hash(pickle.loads(pickle.dumps(finding))) == hash(finding)


def test_no_class_of_the_package_is_a_dataclass() -> None:
    """A dataclass would still work: this keeps the start-up saving from eroding one class at a time."""
    dataclass_types = []
    for info in pkgutil.walk_packages(auditor.__path__, "auditor."):
        if info.name.endswith("__main__") or info.name.startswith("auditor.runtime.child_"):
            continue      # the entry point runs the command; the child scripts run in the sandbox, not here
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and dataclasses.is_dataclass(value):
                dataclass_types.append(f"{module.__name__}.{value.__qualname__}")
    assert dataclass_types == []


def test_a_scan_imports_neither_dataclasses_nor_inspect_nor_ast(tmp_path: Path) -> None:
    """Their imports cost a 200-file scan ~60 M of its instructions (bench/RESULTS.md) and a scan of a folder
    without Python code needs none of them: this keeps that saving from eroding one import at a time."""
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A model\n")
    script = ("import sys\nfrom auditor.cli import run\n"
              f"code = run(['scan', {str(tmp_path)!r}, '--format', 'json', '-o', {str(tmp_path / 'r.json')!r}, '-q'])\n"
              "print(code, sorted({'dataclasses', 'inspect', 'ast'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 1)[1].strip() == "[]" and (tmp_path / "r.json").is_file(), out
