"""Read Python source without running it: import aliases, what runs on import, and the calls that matter.

`analyze(source)` parses with `ast` (never imports or executes) and returns every call that matches
rules/code-patterns.yaml, with its line, the call as written, the fully resolved dotted name, and
whether and why it runs at import time. Import time follows Python's semantics: module level, class
bodies, decorators, default arguments, and the bodies of functions that the module runs while it is
imported (called at module level, decorators, metaclasses, __init_subclass__, callbacks given to
atexit/threading/sys.settrace/import hooks, replacements monkeypatched into libraries, and __init__ of
the config/model/tokenizer classes that loading instantiates). Constants are folded by pyfold.py; the
call checks are in pycalls.py. `decode_source` reads bytes as Python does (BOM, coding cookie).
"""
from __future__ import annotations

import ast
import builtins
import codecs
import functools
import io
import re
import tokenize
from collections import Counter
from typing import Any

from auditor import rules
from auditor.parsers.pycalls import CallChecks
from auditor.parsers.pyfold import MAX_FOLD_CHARS, MAX_FOLD_DEPTH, UNKNOWN, Folder
from auditor.parsers.pywalk import AT_IMPORT, MAX_NODES, _Walker
from auditor.record import field, record

MAX_SOURCE_BYTES = 8 * 1024 * 1024   # larger sources are not parsed (memory); the largest real modeling file is ~0.5 MB
SEGMENT_CHARS = 240
__all__ = ["AT_IMPORT", "MAX_FOLD_CHARS", "MAX_NODES", "MAX_SOURCE_BYTES", "UNKNOWN", "Analysis", "Hit", "analyze",
           "decode_source", "patterns"]

_BUILTINS = {"exec", "eval", "compile", "__import__", "getattr", "open", "input", "chr", "bytes", "bytearray",
             "str", "globals", "locals", "vars"}
_PY_BUILTINS = frozenset(dir(builtins))
_IMPORTERS = {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
_GETATTR = {"getattr", "builtins.getattr"}
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_PLAIN_CODECS = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso-8859-1", "iso8859-1", "cp1252"}


@record(frozen=True)
class Hit:
    category: str            # a category of code-patterns.yaml, or obfuscation / getattr / from-pretrained / blob
    name: str                # resolved dotted name ("socket.create_connection"), "" when none
    line: int
    call: str                # the call as written, clipped
    import_time: bool        # runs when the module is imported (trust_remote_code load), not only when called
    computed: bool = False   # an argument or name that decides what runs could not be resolved
    detail: str = ""
    trigger: str = ""        # why it runs on import ("at import time (decorator @register)"), "" when called


@record
class Analysis:
    hits: list[Hit] = field(default_factory=list)
    imports: dict[str, int] = field(default_factory=dict)     # imported network module -> first line
    modules: list[tuple[int, str, tuple[str, ...], int]] = field(default_factory=list)  # (level, module, names, line)
    loads: list[tuple[int, tuple[str, ...], str]] = field(default_factory=list)  # files spec-loaded/exec'd
    bidi_lines: list[int] = field(default_factory=list)
    imported_tops: set[str] = field(default_factory=set)
    error: str = ""
    limit: str = ""          # a work bound was hit: part of the file was not analyzed


@record(frozen=True)
class Decoded:
    text: str
    encoding: str
    exotic: bool             # a codec other than UTF-8/ASCII/Latin-1: what a reader sees is not what runs
    error: str = ""


def decode_source(raw: bytes) -> Decoded:
    """Bytes to text as the interpreter reads them: BOM and `# coding:` cookie honoured (utf-7 included)."""
    try:
        encoding, _lines = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except (SyntaxError, LookupError) as exc:
        return Decoded(raw.decode("utf-8", "replace"), "utf-8", False, f"encoding: {exc}")
    name = codecs.lookup(encoding).name
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        return Decoded(raw.decode("utf-8", "replace"), name, name not in _PLAIN_CODECS,
                       f"not valid {encoding}: {exc}")
    return Decoded(text.removeprefix("\ufeff"), name, name not in _PLAIN_CODECS)


@record(frozen=True)
class Patterns:
    prefix_category: dict[str, str]
    excluded: frozenset[str]
    conditional: dict[str, dict[str, Any]]
    sensitive_modules: frozenset[str]
    tainted: dict[str, tuple[str, ...]]
    blob_min_chars: int
    blob_magic: tuple[tuple[bytes, str], ...]
    network_imports: tuple[str, ...]
    categories: dict[str, dict[str, Any]]
    url_loaders: frozenset[str] = frozenset()
    remote_code_loaders: frozenset[str] = frozenset()
    repo_loaders: frozenset[str] = frozenset()
    file_loaders: frozenset[str] = frozenset()
    hook_registrars: frozenset[str] = frozenset()
    thread_classes: frozenset[str] = frozenset()
    load_time_bases: frozenset[str] = frozenset()
    load_time_methods: tuple[str, ...] = ()
    hub_env_vars: frozenset[str] = frozenset()
    network_handler_strings: frozenset[str] = frozenset()
    endpoint_keywords: frozenset[str] = frozenset()
    compilers: tuple[str, ...] = ()

    def category(self, name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.excluded:
                return None
            if prefix in self.prefix_category:
                return self.prefix_category[prefix]
        return None

    def is_network_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.network_imports)


@functools.cache
def patterns() -> Patterns:
    data = rules.load("code-patterns.yaml")
    prefix_category: dict[str, str] = {}
    excluded: set[str] = set()
    for cat, spec in data["categories"].items():
        for p in spec["prefixes"]:
            prefix_category[p] = cat
        excluded.update(spec.get("exclude", ()))
    load = data.get("load_time", {})
    return Patterns(
        prefix_category=prefix_category, excluded=frozenset(excluded),
        conditional=dict(data.get("conditional_loaders", {})),
        sensitive_modules=frozenset(data.get("sensitive_modules", ())),
        tainted={k: tuple(v) for k, v in data.get("tainted_sources", {}).items()},
        blob_min_chars=int(data.get("blob_min_chars", 512)),
        blob_magic=tuple((k.encode("latin-1"), v) for k, v in data.get("blob_magic", {}).items()),
        network_imports=tuple(data.get("network_imports", ())),
        categories=data["categories"], url_loaders=frozenset(data.get("url_loaders", ())),
        remote_code_loaders=frozenset(data.get("remote_code_loaders", ())),
        repo_loaders=frozenset(data.get("repo_loaders", ())),
        file_loaders=frozenset(data.get("file_loaders", ())),
        hook_registrars=frozenset(load.get("hook_registrars", ())),
        thread_classes=frozenset(load.get("thread_classes", ())),
        load_time_bases=frozenset(load.get("instantiated_bases", ())),
        load_time_methods=tuple(load.get("instantiated_methods", ())),
        hub_env_vars=frozenset(data.get("hub_env_vars", ())),
        network_handler_strings=frozenset(data.get("network_handler_strings", ())),
        endpoint_keywords=frozenset(data.get("endpoint_keywords", ())),
        compilers=tuple(data.get("native_compilers", ())))


def analyze(source: str, *, payload_depth: int = 0, line_offset: int = 0) -> Analysis:
    """Every interesting call in `source`. A syntax error is returned in Analysis.error."""
    if len(source) > MAX_SOURCE_BYTES:
        return Analysis(error=f"larger than {MAX_SOURCE_BYTES} characters; not parsed",
                        limit=f"larger than {MAX_SOURCE_BYTES} characters")
    bidi = sorted({source.count("\n", 0, m.start()) + 1 + line_offset for m in _BIDI.finditer(source)})[:100]
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        return Analysis(error=f"{type(exc).__name__}: {getattr(exc, 'msg', '') or exc}{where}", bidi_lines=bidi)
    analyzer = _Analyzer(source, tree, patterns(), payload_depth, line_offset)
    analyzer.result.bidi_lines = bidi
    try:
        analyzer.run()
    except RecursionError:
        analyzer.result.error = "RecursionError: expression nesting too deep to analyze"
    if analyzer.budget_hit:
        analyzer.result.limit = "constant folding budget spent; some expressions were not folded"
    return analyzer.result


class _Analyzer(Folder, CallChecks):
    def __init__(self, source: str, tree: ast.Module, pats: Patterns, payload_depth: int, line_offset: int):
        super().__init__()
        self.lines = source.splitlines()
        self.tree = tree
        self.pats = pats
        self.payload_depth = payload_depth
        self.line_offset = line_offset
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.bound: Counter[str] = Counter()    # names bound in the file (assigned, def, class, argument)
        self.assigns: dict[str, ast.expr] = {}  # name -> value of its `name = value` statements
        self.loop_iters: dict[str, ast.expr] = {}
        self.result = Analysis()
        self.walker = _Walker(self)

    def run(self) -> None:
        w = self.walker
        w.walk()
        self._resolve_assignments()
        self.result.imported_tops = {v.split(".")[0] for v in self.aliases.values()}
        for call, when in w.calls:
            self._check_call(call, when)
            name = self.resolve(call.func)
            if name:
                self._check_env_call(call, name, when)
        for constant, when in w.strings:
            self._check_string(constant, when)
        for sub, when in w.subscripts:
            self._check_subscript(sub, when)
        for ref, when in w.refs:
            self._check_reference(ref, when)
        for target, value, when in w.stores:
            self._check_store(target, value, when)

    # --- names -------------------------------------------------------------------------------------

    def import_(self, node: ast.Import | ast.ImportFrom) -> None:
        line = node.lineno + self.line_offset
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.result.modules.append((0, alias.name, (), line))
                self._record_import(alias.name, node.lineno)
                top = alias.name.split(".")[0]
                self.aliases[alias.asname or top] = alias.name if alias.asname else top
            return
        names = tuple(a.name for a in node.names)
        self.result.modules.append((node.level, node.module or "", names, line))
        module = "." * node.level + (node.module or "") if node.level else node.module or ""
        if not node.level:
            self._record_import(module, node.lineno)
        for alias in node.names:
            if alias.name == "*":
                if not node.level:
                    self.star_modules.append(module)
                continue
            full = f"{module}.{alias.name}" if module and not module.endswith(".") else module + alias.name
            self.aliases[alias.asname or alias.name] = full
            if not node.level and self.pats.is_network_module(full):
                self._record_import(full, node.lineno)

    def _record_import(self, module: str, line: int) -> None:
        if module:
            self.result.imports.setdefault(module, line + self.line_offset)

    def _resolve_assignments(self) -> None:
        stores, assigns = self.bound, self.assigns
        pending = {name: value for name, value in assigns.items() if stores[name] == 1
                   and name not in self.aliases and _may_resolve(value)}
        for _ in range(3):      # chains: m = __import__(x); f = getattr(m, y)
            progress = False
            for name, value in list(pending.items()):
                folded = self.fold(value)
                resolved = self.resolve(value) if folded is UNKNOWN else None
                if folded is not UNKNOWN:
                    self.constants[name] = folded
                elif resolved:
                    self.aliases[name] = resolved
                else:
                    continue
                del pending[name]
                progress = True
            if not progress:
                break

    def resolve(self, node: ast.AST, depth: int = 0, called: bool = False) -> str | None:
        """The dotted name an expression refers to, or None. `called`: `node` is the function of a call."""
        if depth > MAX_FOLD_DEPTH:
            return None
        if isinstance(node, ast.Name):
            return self._resolve_name(node.id, called)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, depth + 1)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):      # __builtins__["exec"], globals()["__builtins__"], sys.modules[m]
            base = self.resolve(node.value, depth + 1)
            key = self.fold(node.slice)
            if not isinstance(key, str):
                return None
            if base in ("builtins", "builtins.__dict__"):
                return f"builtins.{key}"
            if base in ("globals()", "locals()"):
                return "builtins" if key == "__builtins__" else self._resolve_name(key, called)
            return key if base == "sys.modules" else None
        if isinstance(node, ast.Call):
            return self._resolve_call(node, depth)
        return None

    def _resolve_name(self, name: str, called: bool) -> str | None:
        if name in self.aliases:
            return self.aliases[name]
        if name in _BUILTINS:
            return name
        if name == "__builtins__":
            return "builtins"
        if name in self.bound or name in _PY_BUILTINS:
            return None
        # A called name bound nowhere in the file comes from a `from x import *`.
        for module in self.star_modules if called else ():
            candidate = f"{module}.{name}"
            if self.pats.category(candidate):
                return candidate
        return None

    def _resolve_call(self, node: ast.Call, depth: int) -> str | None:
        func = self.resolve(node.func, depth + 1)
        if func in _IMPORTERS and node.args:
            name = self.fold(node.args[0])
            return name if isinstance(name, str) else None
        if func in _GETATTR and len(node.args) >= 2:
            base = self.resolve(node.args[0], depth + 1)
            attr = self.fold(node.args[1])
            return f"{base}.{attr}" if base and isinstance(attr, str) else None
        if func in ("globals", "locals"):
            return f"{func}()"
        if func == "vars":
            inner = self.resolve(node.args[0], depth + 1) if node.args else "locals()"
            return f"{inner}.__dict__" if inner and inner != "locals()" else inner
        # An instance of a library class: its methods resolve under the class (code.InteractiveConsole().push)
        if func and func.rsplit(".", 1)[-1][:1].isupper():
            return func
        return None

    # --- hits ------------------------------------------------------------------------------------------

    def _hit(self, category: str, name: str, node: ast.AST, when: str, computed: bool = False,
             detail: str = "") -> None:
        line = getattr(node, "lineno", 0) + self.line_offset
        self.result.hits.append(Hit(category, name, line, self._segment(node), bool(when), computed, detail, when))

    def _segment(self, node: ast.AST) -> str:
        try:
            first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
            start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
            if first == last:
                text = self.lines[first].encode()[start:end].decode("utf-8", "replace")
            else:
                chunk = [self.lines[first].encode()[start:].decode("utf-8", "replace")]
                chunk += self.lines[first + 1:min(last, first + 6)]
                text = "\n".join(chunk)
        except (AttributeError, IndexError, TypeError):
            text = ""
        text = " ".join(text.split())
        return text if len(text) <= SEGMENT_CHARS else text[:SEGMENT_CHARS] + "..."


def _may_resolve(node: ast.expr) -> bool:
    """Cheap filter: only names, attributes, constants and calls/operations on them can fold or resolve."""
    return isinstance(node, (ast.Constant, ast.Name, ast.Attribute, ast.Call, ast.BinOp, ast.JoinedStr,
                             ast.Subscript, ast.List, ast.Tuple, ast.UnaryOp, ast.Dict))

