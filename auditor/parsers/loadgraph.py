"""Which shipped files run when the model is loaded, which only when someone runs them, which never.

Pure: built from file paths, parsed configs and each Python file's imports (pyast.Analysis.modules
and .loads); no findings, no policy. Entry points are every `auto_map` of every config kind and
sub-config (text_config, vision_config, ... at any depth), PEFT's `auto_mapping`, tokenizer_config's
auto_map lists and `custom_pipelines`; from them the graph follows imports inside the repo
(absolute and relative, transitively) and the files a module loads by path
(spec_from_file_location, SourceFileLoader, runpy.run_path, exec(open(...))), which are code
whatever their extension. A file off that graph gets a role from its path alone (rules in
rules/code-patterns.yaml `load_graph`): example (examples, demos, scripts, tests, notebooks,
fine-tune scripts), ci (workflows), data (training data) or docs; any other code is "shipped".
"""
from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from auditor import rules
from auditor.record import record

LOAD, SHIPPED, EXAMPLE, CI, DATA, DOCS = "load", "shipped", "example", "ci", "data", "docs"
MAX_CONFIG_DEPTH = 8
_AUTOMAP_ENTRY = re.compile(r"^(?:(?P<repo>[\w.-]+(?:/[\w.-]+)?)--)?(?P<module>[\w.]+)\.(?P<cls>\w+)$")


@record(frozen=True)
class Entry:
    """One class reference a loader follows: `where` is its key path in the config."""
    config: str
    where: str               # "auto_map.AutoModel", "text_config.auto_map.AutoConfig", "auto_mapping"
    key: str
    ref: Any                 # the value as written
    repo: str = ""           # "org/name" of a cross-repo reference
    module: str = ""
    file: str = ""           # the module's path in this repo (may be absent from the snapshot)

    @property
    def valid(self) -> bool:
        return bool(self.module)


@functools.cache
def _patterns() -> dict[str, Any]:
    return dict(rules.load("code-patterns.yaml").get("load_graph", {}))


@functools.cache
def _role_rules() -> tuple[Any, ...]:
    """The `load_graph` path rules as sets and one compiled pattern (path_role runs once per file)."""
    spec = _patterns()
    names = [f"(?:{pattern})" for pattern in spec.get("example_names", ())]
    return (tuple(spec.get("ci_paths", ())), frozenset(spec.get("ci_files", ())),
            frozenset(spec.get("data_suffixes", ())), frozenset(spec.get("data_dirs", ())),
            frozenset(spec.get("example_suffixes", ())), frozenset(spec.get("example_dirs", ())),
            re.compile("|".join(names)) if names else None,
            frozenset(spec.get("doc_suffixes", ())), frozenset(spec.get("doc_dirs", ())))


def path_role(path: str) -> str:
    """The role a file has by its path alone (before the load graph is known)."""
    ci_paths, ci_files, data_suffixes, data_dirs, example_suffixes, example_dirs, example_names, \
        doc_suffixes, doc_dirs = _role_rules()
    low = path.lower()
    folder, _, name = low.rpartition("/")
    parts = {part for part in folder.split("/") if part not in ("", ".")}   # PurePosixPath(low).parts[:-1]
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""                 # PurePosixPath(low).suffix
    if low.startswith(ci_paths) or name in ci_files:
        return CI
    if suffix in data_suffixes or not parts.isdisjoint(data_dirs):
        return DATA
    if suffix in example_suffixes or not parts.isdisjoint(example_dirs):
        return EXAMPLE
    if example_names is not None and example_names.search(name):
        return EXAMPLE
    if suffix in doc_suffixes or not parts.isdisjoint(doc_dirs):
        return DOCS
    return SHIPPED


def entries(config: str, data: Any) -> Iterator[Entry]:
    """Every class reference in one parsed config, at any depth of sub-configs."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, prefix, depth = stack.pop()
        if not isinstance(node, dict) or depth > MAX_CONFIG_DEPTH:
            continue
        for key, value in node.items():
            key = str(key)
            if key == "auto_map":
                yield from _automap(config, f"{prefix}auto_map", value)
            elif key == "auto_mapping" and isinstance(value, dict):   # PEFT: importlib.import_module(parent_library)
                module = value.get("parent_library")
                cls = value.get("base_model_class") or value.get("class") or "?"
                if isinstance(module, str) and module:
                    yield _entry(config, f"{prefix}auto_mapping", "auto_mapping", f"{module}.{cls}")
            elif key == "custom_pipelines" and isinstance(value, dict):
                for task, spec in value.items():
                    if isinstance(spec, dict) and spec.get("impl"):
                        yield _entry(config, f"{prefix}custom_pipelines.{task}", str(task), spec["impl"])
            elif isinstance(value, dict):
                stack.append((value, f"{prefix}{key}.", depth + 1))


def _automap(config: str, where: str, value: Any) -> Iterator[Entry]:
    items: Iterable[tuple[str, Any]]
    if isinstance(value, dict):
        items = ((str(k), e) for k, v in value.items() for e in (v if isinstance(v, list) else [v]))
    elif isinstance(value, list):
        items = (("", e) for e in value)
    else:
        items = [("", value)]
    for key, ref in items:
        if ref is not None:
            yield _entry(config, f"{where}.{key}" if key else where, key, ref)


def _entry(config: str, where: str, key: str, ref: Any) -> Entry:
    match = _AUTOMAP_ENTRY.match(ref) if isinstance(ref, str) else None
    if match is None:
        return Entry(config, where, key, ref)
    if match.group("repo"):
        return Entry(config, where, key, ref, repo=match.group("repo"), module=match.group("module"))
    folder = PurePosixPath(config).parent
    path = (folder / (match.group("module").replace(".", "/") + ".py")).as_posix()
    return Entry(config, where, key, ref, module=match.group("module"), file=path.removeprefix("./"))


class LoadGraph:
    """Files reached from the entry points, each with the chain that reaches it."""

    def __init__(self, paths: Iterable[str], found: Iterable[Entry],
                 modules: dict[str, list[tuple[int, str, tuple[str, ...], int]]],
                 loads: dict[str, list[tuple[str, ...]]]):
        self.present = set(paths)
        self.lower = {p.lower(): p for p in self.present}
        self.chains: dict[str, tuple[str, ...]] = {}
        self.loaded_as_code: set[str] = set()    # non-.py files a module loads by path
        queue: deque[str] = deque()
        for entry in found:
            if entry.file and entry.file in self.present and entry.file not in self.chains:
                self.chains[entry.file] = (f"{entry.where} ({entry.config})", entry.file)
                queue.append(entry.file)
        while queue:
            current = queue.popleft()
            targets = [t for m in modules.get(current, ()) for t in self._import_targets(current, m)]
            by_path = [t for names in loads.get(current, ()) for t in self._path_targets(current, names)]
            self.loaded_as_code.update(t for t in by_path if not t.endswith(".py"))
            for target in targets + by_path:
                if target not in self.chains:
                    self.chains[target] = (*self.chains[current], target)
                    queue.append(target)

    def role(self, path: str) -> str:
        return LOAD if path in self.chains else path_role(path)

    def why(self, path: str) -> str:
        chain = self.chains.get(path)
        if chain:
            return "loaded via " + " -> ".join(chain)
        role = path_role(path)
        return {EXAMPLE: "not loaded with the model (example, demo, script, test or notebook)",
                CI: "not loaded with the model (CI workflow)", DATA: "not loaded with the model (data)",
                DOCS: "not loaded with the model (documentation)"}.get(
            role, "not reached from any auto_map; runs if imported")

    def _import_targets(self, current: str, ref: tuple[int, str, tuple[str, ...], int]) -> list[str]:
        level, module, names, _line = ref
        folder = PurePosixPath(current).parent
        bases = [folder]
        for _ in range(max(level - 1, 0)):
            bases = [bases[0].parent]
        if not level:
            bases = [folder, PurePosixPath(".")]
        out = []
        for base in bases:
            stem = base / module.replace(".", "/") if module else base
            candidates = [f"{stem}.py", f"{stem}/__init__.py"] if module else []
            candidates += [f"{stem}/{n}.py" for n in names if n != "*"]
            out += [p for p in (_norm(c) for c in candidates) if p in self.present and p != current]
        return out

    def _path_targets(self, current: str, names: tuple[str, ...]) -> list[str]:
        folder = PurePosixPath(current).parent
        out = []
        for name in names:
            name = name.strip().removeprefix("./")
            if not name or "\n" in name or len(name) > 200:
                continue
            for candidate in (_norm(str(folder / name)), _norm(name)):
                if candidate in self.present and candidate != current:
                    out.append(candidate)
                    break
            else:
                base = PurePosixPath(name).name.lower()
                same_dir = self.lower.get(_norm(str(folder / base)))
                if base and "." in base and same_dir:
                    out.append(same_dir)
        return out


def _norm(path: str) -> str:
    parts: list[str] = []
    for part in PurePosixPath(path).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)
