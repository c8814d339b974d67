"""Read Python source without running it: import aliases, constant folding, and the calls that matter.

`analyze(source)` parses with `ast` (never imports or executes) and returns every call that matches
rules/code-patterns.yaml, with its line, the call as written, the fully resolved dotted name, and
whether it runs at import time. Obfuscation is folded where it is constant (string concatenation,
f-strings, chr() chains, bytes.fromhex, codecs rot13, base64/zlib/bz2 of constants, join, slicing);
what stays computed is reported as computed. A folded exec/eval payload is analyzed in turn.
"""
from __future__ import annotations

import ast
import base64
import binascii
import builtins
import bz2
import codecs
import functools
import lzma
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from auditor import rules
from auditor.parsers import repoid

MAX_FOLD_CHARS = 1_000_000        # longest folded constant (bounds decompression and repetition)
MAX_FOLD_DEPTH = 60               # nested expressions folded
MAX_PAYLOAD_DEPTH = 3             # exec(decoded code) analyzed this many levels deep
MAX_COMPREHENSION_ITEMS = 100_000
MAX_NODES = 2_000_000             # AST nodes visited per file
MAX_SOURCE_BYTES = 8 * 1024 * 1024   # larger sources are not parsed (memory); the largest real modeling file is ~0.5 MB
SEGMENT_CHARS = 240

_BUILTINS = {"exec", "eval", "compile", "__import__", "getattr", "open", "input", "chr", "bytes", "bytearray",
             "str"}
_PY_BUILTINS = frozenset(dir(builtins))
_IMPORTERS = {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
_GETATTR = {"getattr", "builtins.getattr"}
_B64 = re.compile(rb"^[A-Za-z0-9+/=\s_-]+$")
_HEX = re.compile(rb"^[0-9a-fA-F\s]+$")


class _Unknown:
    def __repr__(self) -> str:
        return "<computed>"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Hit:
    category: str            # a category of code-patterns.yaml, or obfuscation / getattr / from-pretrained / blob
    name: str                # resolved dotted name ("socket.create_connection"), "" when none
    line: int
    call: str                # the call as written, clipped
    import_time: bool        # runs when the module is imported (trust_remote_code load), not only when called
    computed: bool = False   # an argument or name that decides what runs could not be resolved
    detail: str = ""


@dataclass
class Analysis:
    hits: list[Hit] = field(default_factory=list)
    imports: dict[str, int] = field(default_factory=dict)     # imported module -> first line
    error: str = ""


@dataclass(frozen=True)
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

    def category(self, name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.excluded:
                return None
            if prefix in self.prefix_category:
                return self.prefix_category[prefix]
        return None


@functools.cache
def patterns() -> Patterns:
    data = rules.load("code-patterns.yaml")
    prefix_category: dict[str, str] = {}
    excluded: set[str] = set()
    for cat, spec in data["categories"].items():
        for p in spec["prefixes"]:
            prefix_category[p] = cat
        excluded.update(spec.get("exclude", ()))
    return Patterns(
        prefix_category=prefix_category, excluded=frozenset(excluded),
        conditional=dict(data.get("conditional_loaders", {})),
        sensitive_modules=frozenset(data.get("sensitive_modules", ())),
        tainted={k: tuple(v) for k, v in data.get("tainted_sources", {}).items()},
        blob_min_chars=int(data.get("blob_min_chars", 512)),
        blob_magic=tuple((k.encode("latin-1"), v) for k, v in data.get("blob_magic", {}).items()),
        network_imports=tuple(data.get("network_imports", ())),
        categories=data["categories"], url_loaders=frozenset(data.get("url_loaders", ())))


def analyze(source: str, *, payload_depth: int = 0, line_offset: int = 0) -> Analysis:
    """Every interesting call in `source`. A syntax error is returned in Analysis.error."""
    if len(source) > MAX_SOURCE_BYTES:
        return Analysis(error=f"larger than {MAX_SOURCE_BYTES} characters; not parsed")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        return Analysis(error=f"{type(exc).__name__}: {getattr(exc, 'msg', '') or exc}{where}")
    analyzer = _Analyzer(source, tree, patterns(), payload_depth, line_offset)
    try:
        analyzer.run()
    except RecursionError:
        analyzer.result.error = "RecursionError: expression nesting too deep to analyze"
    return analyzer.result


class _Analyzer:
    def __init__(self, source: str, tree: ast.Module, pats: Patterns, payload_depth: int, line_offset: int):
        self.lines = source.splitlines()
        self.tree = tree
        self.pats = pats
        self.payload_depth = payload_depth
        self.line_offset = line_offset
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.constants: dict[str, Any] = {}
        self.bound: Counter[str] = Counter()    # names bound in the file (assigned, def, class, argument)
        self.assigns: dict[str, ast.expr] = {}  # name -> value of its `name = value` statements
        self.result = Analysis()

    # --- pass 1: names ---------------------------------------------------------------------------

    def run(self) -> None:
        calls, strings = self._walk()
        self._resolve_assignments()
        for call, import_time in calls:
            self._check_call(call, import_time)
        for constant, import_time in strings:
            self._check_blob(constant, import_time)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._record_import(alias.name, node.lineno)
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            if node.level:          # relative import: the repo's own module, resolved as such
                module = "." * node.level + (node.module or "")
            else:
                module = node.module or ""
                self._record_import(module, node.lineno)
            for alias in node.names:
                if alias.name == "*":
                    if not node.level:
                        self.star_modules.append(module)
                    continue
                full = f"{module}.{alias.name}" if module and not module.endswith(".") else module + alias.name
                self.aliases[alias.asname or alias.name] = full
                if not node.level:
                    self._record_import(full, node.lineno, submodule=True)

    def _record_import(self, module: str, line: int, submodule: bool = False) -> None:
        if not module:
            return
        if submodule:   # `from urllib import request` imports urllib.request when it is a module
            if any(module == m or module.startswith(m + ".") for m in self.pats.network_imports):
                self.result.imports.setdefault(module, line + self.line_offset)
            return
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

    # --- resolution and folding -------------------------------------------------------------------

    def resolve(self, node: ast.AST, depth: int = 0, called: bool = False) -> str | None:
        """The dotted name an expression refers to, or None. `called`: `node` is the function of a call."""
        if depth > MAX_FOLD_DEPTH:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in _BUILTINS:
                return node.id
            if node.id == "__builtins__":
                return "builtins"
            if node.id in self.bound or node.id in _PY_BUILTINS:
                return None
            # A called name bound nowhere in the file comes from a `from x import *`.
            for module in self.star_modules if called else ():
                candidate = f"{module}.{node.id}"
                if self.pats.category(candidate):
                    return candidate
            return None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, depth + 1)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):      # __builtins__["exec"], builtins.__dict__["eval"]
            base = self.resolve(node.value, depth + 1)
            key = self.fold(node.slice)
            if base in ("builtins", "builtins.__dict__") and isinstance(key, str):
                return f"builtins.{key}"
            return None
        if isinstance(node, ast.Call):
            func = self.resolve(node.func, depth + 1)
            if func in _IMPORTERS and node.args:
                name = self.fold(node.args[0])
                return name if isinstance(name, str) else None
            if func in _GETATTR and len(node.args) >= 2:
                base = self.resolve(node.args[0], depth + 1)
                attr = self.fold(node.args[1])
                return f"{base}.{attr}" if base and isinstance(attr, str) else None
        return None

    def fold(self, node: ast.AST, depth: int = 0) -> Any:
        """The constant value of an expression, or UNKNOWN."""
        if depth > MAX_FOLD_DEPTH:
            return UNKNOWN
        d = depth + 1
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id, UNKNOWN)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.fold(e, d) for e in node.elts]
            return UNKNOWN if any(i is UNKNOWN for i in items) else items
        if isinstance(node, ast.BinOp):
            return self._fold_binop(node, d)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            operand = self.fold(node.operand, d)
            if not _is_int(operand):
                return UNKNOWN
            return -operand if isinstance(node.op, ast.USub) else ~operand if isinstance(node.op, ast.Invert) \
                else operand
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                part = self.fold(value.value if isinstance(value, ast.FormattedValue) else value, d)
                if part is UNKNOWN:
                    return UNKNOWN
                parts.append(part if isinstance(part, str) else str(part))
            return _bounded("".join(parts))
        if isinstance(node, ast.Subscript):
            return self._fold_subscript(node, d)
        if isinstance(node, ast.Call):
            return self._fold_call(node, d)
        return UNKNOWN

    def _fold_binop(self, node: ast.BinOp, d: int) -> Any:
        left, right = self.fold(node.left, d), self.fold(node.right, d)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if isinstance(node.op, ast.Add):
            if isinstance(left, str) and isinstance(right, str):
                return _bounded(left + right)
            if isinstance(left, bytes) and isinstance(right, bytes):
                return _bounded(left + right)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            if _is_int(left) and _is_int(right):
                return left + right
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes)) and _is_int(n) and len(seq) * max(n, 0) <= MAX_FOLD_CHARS:
                    return seq * n
            if _is_int(left) and _is_int(right):
                return left * right
        if isinstance(node.op, ast.Sub) and _is_int(left) and _is_int(right):
            return left - right
        if isinstance(node.op, ast.BitXor) and _is_int(left) and _is_int(right):
            return left ^ right
        return UNKNOWN

    def _fold_subscript(self, node: ast.Subscript, d: int) -> Any:
        value = self.fold(node.value, d)
        if not isinstance(value, (str, bytes, list)):
            return UNKNOWN
        sl = node.slice
        try:
            if isinstance(sl, ast.Slice):
                parts = [None if p is None else self.fold(p, d) for p in (sl.lower, sl.upper, sl.step)]
                if any(p is UNKNOWN or not (p is None or _is_int(p)) for p in parts):
                    return UNKNOWN
                return value[slice(*parts)]
            index = self.fold(sl, d)
            return value[index] if _is_int(index) else UNKNOWN
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
                return _fold_method(receiver, func.attr, args, kwargs)
        name = self.resolve(func)
        if name is None:
            return UNKNOWN
        return _fold_function(name, args, kwargs)

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
        return _fold_method(sep, "join", [out], {})

    # --- pass 2: calls ------------------------------------------------------------------------------

    def _walk(self) -> tuple[list[tuple[ast.Call, bool]], list[tuple[ast.Constant, bool]]]:
        """One traversal: imports, bound names, single assignments, and every call and long string
        with whether it runs at import time."""
        calls: list[tuple[ast.Call, bool]] = []
        strings: list[tuple[ast.Constant, bool]] = []
        blob_min = self.pats.blob_min_chars
        stack: list[tuple[ast.AST, bool]] = [(self.tree, True)]
        visited = 0
        while stack:
            node, import_time = stack.pop()
            visited += 1
            if visited > MAX_NODES:
                self.result.error = f"more than {MAX_NODES} syntax nodes; the rest was not analyzed"
                break
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    self.bound[node.id] += 1
                continue
            if isinstance(node, ast.Constant):
                if isinstance(node.value, (str, bytes)) and len(node.value) >= blob_min:
                    strings.append((node, import_time))
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not isinstance(node, ast.Lambda):
                    self.bound[node.name] += 1
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                    if arg is not None:
                        self.bound[arg.arg] += 1
                # decorators and defaults run when the def runs; the body only when called
                eager = list(getattr(node, "decorator_list", [])) + a.defaults + \
                    [k for k in a.kw_defaults if k is not None]
                stack.extend((n, import_time) for n in eager)
                body = node.body if isinstance(node.body, list) else [node.body]
                stack.extend((n, False) for n in body)
                continue
            if isinstance(node, ast.If) and _is_main_guard(node.test):
                stack.extend((n, False) for n in node.body)
                stack.extend((n, import_time) for n in node.orelse)
                continue
            if isinstance(node, ast.Call):
                calls.append((node, import_time))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node)
            elif isinstance(node, ast.ClassDef):
                self.bound[node.name] += 1
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.assigns[node.targets[0].id] = node.value
            for field_name in node._fields:
                value = getattr(node, field_name, None)
                if isinstance(value, ast.AST):
                    stack.append((value, import_time))
                elif isinstance(value, list):
                    stack.extend((item, import_time) for item in value if isinstance(item, ast.AST))
        return calls, strings

    def _hit(self, category: str, name: str, node: ast.AST, import_time: bool,
             computed: bool = False, detail: str = "") -> None:
        line = getattr(node, "lineno", 0) + self.line_offset
        self.result.hits.append(Hit(category, name, line, self._segment(node), import_time, computed, detail))

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

    def _check_call(self, node: ast.Call, import_time: bool) -> None:
        name = self.resolve(node.func, called=True)
        if name in _GETATTR and len(node.args) >= 2:
            self._check_getattr(node, import_time)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
            self._check_from_pretrained(node, import_time)
        if not name:
            return
        category = self.pats.category(name)
        if category is None:
            if name in self.pats.url_loaders and node.args:
                url = self.fold(node.args[0])
                if isinstance(url, str) and "://" in url[:16] and not url.startswith("file://"):
                    self._hit("network", name, node, import_time, detail=f"loads {url[:200]}")
            return
        if category == "unsafe-loader":
            if self._loader_is_safe(name, node):
                return
            self._hit(category, name, node, import_time, detail=self._loader_detail(name, node))
            return
        if category in ("dynamic-code", "dynamic-import"):
            self._check_dynamic(category, name, node, import_time)
            return
        self._hit(category, name, node, import_time)

    def _loader_is_safe(self, name: str, node: ast.Call) -> bool:
        rule = self.pats.conditional.get(name)
        if rule is None:
            return False
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        if "safe_keyword" in rule:
            value = kwargs.get(rule["safe_keyword"])
            return value is not None and self.fold(value) == rule["safe_value"]
        if "unsafe_keyword" in rule:
            value = kwargs.get(rule["unsafe_keyword"])
            if value is None:
                return True
            folded = self.fold(value)
            return folded is not UNKNOWN and folded != rule["unsafe_value"]
        if "safe_loaders" in rule:
            loader = kwargs.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None:
                return False
            resolved = self.resolve(loader) or (loader.id if isinstance(loader, ast.Name) else "")
            return resolved in rule["safe_loaders"] or resolved.rsplit(".", 1)[-1] in rule["safe_loaders"]
        return False

    def _loader_detail(self, name: str, node: ast.Call) -> str:
        keyword = (self.pats.conditional.get(name) or {}).get("safe_keyword")
        if not keyword:
            return ""
        value = next((k.value for k in node.keywords if k.arg == keyword), None)
        if value is None:
            return f"no {keyword}=True"
        folded = self.fold(value)
        return f"{keyword} is computed" if folded is UNKNOWN else f"{keyword}={folded!r}"

    def _check_dynamic(self, category: str, name: str, node: ast.Call, import_time: bool) -> None:
        arg = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("source", "name", "object", "code")), None)
        if arg is None:
            self._hit(category, name, node, import_time, computed=True, detail="no visible argument")
            return
        if isinstance(arg, ast.Constant):
            self._after_fold(category, name, node, import_time, arg.value)
            return
        value = self.fold(arg)
        if value is UNKNOWN:
            self._hit(category, name, node, import_time, computed=True, detail=self._taint(arg))
            return
        self._hit("obfuscation", name, node, import_time, detail=f"argument folds to {_preview(value)}")
        self._after_fold(category, name, node, import_time, value)

    def _after_fold(self, category: str, name: str, node: ast.Call, import_time: bool, value: Any) -> None:
        if category == "dynamic-import":
            detail = f"imports {value!r}" if isinstance(value, str) else ""
            network = isinstance(value, str) and any(
                value == m or value.startswith(m + ".") for m in self.pats.network_imports)
            if network:
                self.result.imports.setdefault(value, getattr(node, "lineno", 0) + self.line_offset)
            self._hit(category, name, node, import_time, detail=detail)
            return
        self._hit(category, name, node, import_time, detail=f"runs {_preview(value)}")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and self.payload_depth < MAX_PAYLOAD_DEPTH:
            inner = analyze(value, payload_depth=self.payload_depth + 1)
            for hit in inner.hits:
                self.result.hits.append(Hit(hit.category, hit.name, getattr(node, "lineno", 0) + self.line_offset,
                                            hit.call, import_time, hit.computed,
                                            f"inside the code run by {name}(): {hit.detail}".rstrip(": ")))
            for module in inner.imports:
                self.result.imports.setdefault(module, getattr(node, "lineno", 0) + self.line_offset)

    def _taint(self, arg: ast.AST) -> str:
        found: list[str] = []
        for sub in ast.walk(arg):
            if isinstance(sub, (ast.Call, ast.Attribute, ast.Name)):
                target = sub.func if isinstance(sub, ast.Call) else sub
                resolved = self.resolve(target) or ""
                for label, prefixes in self.pats.tainted.items():
                    if resolved and any(resolved == p or resolved.startswith(p + ".") for p in prefixes):
                        if label not in found:
                            found.append(label)
        return "computed from " + ", ".join(found) if found else "computed argument"

    def _check_getattr(self, node: ast.Call, import_time: bool) -> None:
        base = self.resolve(node.args[0])
        attr_node = node.args[1]
        attr = self.fold(attr_node)
        if attr is UNKNOWN:
            if base:
                sensitive = base in self.pats.sensitive_modules or base.split(".")[0] in self.pats.sensitive_modules
                self._hit("getattr", base, node, import_time, computed=True,
                          detail="sensitive module" if sensitive else "module")
        elif not isinstance(attr_node, ast.Constant) and base:
            self._hit("obfuscation", f"{base}.{attr}", node, import_time, detail=f"name folds to {attr!r}")

    def _check_from_pretrained(self, node: ast.Call, import_time: bool) -> None:
        arg = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg == "pretrained_model_name_or_path"), None)
        if arg is None:
            return
        value = self.fold(arg)
        if isinstance(value, str) and repoid.is_repo_id(value) and not value.startswith((".", "/")):
            self._hit("from-pretrained", value, node, import_time, detail=f"loads repo {value}")

    def _check_blob(self, node: ast.Constant, import_time: bool) -> None:
        value = node.value
        if not isinstance(value, (str, bytes)) or len(value) < self.pats.blob_min_chars:
            return
        raw = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
        head = raw[:4096]
        decoded = b""
        if _HEX.match(head):
            decoded = _safe(lambda: bytes.fromhex("".join(head.decode().split())[:128]))
        elif _B64.match(head):
            compact = b"".join(head.split())[:128]
            decoded = _safe(lambda: base64.b64decode(compact + b"=" * (-len(compact) % 4), altchars=None))
            if decoded is UNKNOWN:
                decoded = _safe(lambda: base64.urlsafe_b64decode(compact + b"=" * (-len(compact) % 4)))
        if isinstance(value, bytes):
            decoded = decoded if isinstance(decoded, bytes) and decoded else value[:128]
        if not isinstance(decoded, bytes):
            return
        for magic, kind in self.pats.blob_magic:
            if decoded.startswith(magic):
                self._hit("blob", "", node, import_time,
                          detail=f"{len(value)} characters encoding {kind} data")
                return


# --- folding helpers --------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bounded(v: Any) -> Any:
    return v if not isinstance(v, (str, bytes)) or len(v) <= MAX_FOLD_CHARS else UNKNOWN


def _safe(fn: Any) -> Any:
    try:
        return _bounded(fn())
    except (ValueError, TypeError, binascii.Error, LookupError, OverflowError, UnicodeError,
            zlib.error, OSError, EOFError, lzma.LZMAError, AttributeError, MemoryError):
        return UNKNOWN


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "..."


_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "replace", "format", "encode", "decode", "title",
                "capitalize", "swapcase", "casefold", "zfill", "removeprefix", "removesuffix", "translate"}


def _fold_method(receiver: Any, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if method == "join" and isinstance(receiver, (str, bytes)) and len(args) == 1:
        items = args[0]
        if isinstance(items, (list, tuple)) and all(isinstance(i, type(receiver)) for i in items):
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
        return bool(args) and _is_int(args[0]) and args[0] <= MAX_FOLD_CHARS
    if method == "replace":
        new = args[1] if len(args) > 1 else ""
        return isinstance(new, (str, bytes)) and (len(receiver) + 1) * max(1, len(new)) <= MAX_FOLD_CHARS
    if method == "format":   # "{:>999999999}" pads; only plain fields of scalar constants are folded
        return isinstance(receiver, str) and ":" not in receiver and "!" not in receiver and \
            all(isinstance(a, (str, int, float)) for a in [*args, *kwargs.values()])
    return True


def _decompress(kind: str, data: Any) -> Any:
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
    return _bounded(out)


_DECODERS = {
    "base64.b64decode": lambda a: base64.b64decode(a[0]),
    "base64.standard_b64decode": lambda a: base64.standard_b64decode(a[0]),
    "base64.urlsafe_b64decode": lambda a: base64.urlsafe_b64decode(a[0]),
    "base64.b32decode": lambda a: base64.b32decode(a[0]),
    "base64.b16decode": lambda a: base64.b16decode(a[0], casefold=True),
    "base64.b85decode": lambda a: base64.b85decode(a[0]),
    "base64.a85decode": lambda a: base64.a85decode(a[0]),
    "base64.decodebytes": lambda a: base64.decodebytes(a[0] if isinstance(a[0], bytes) else a[0].encode()),
    "binascii.unhexlify": lambda a: binascii.unhexlify(a[0]),
    "binascii.a2b_hex": lambda a: binascii.a2b_hex(a[0]),
    "binascii.a2b_base64": lambda a: binascii.a2b_base64(a[0]),
    "chr": lambda a: chr(a[0]),
    "str": lambda a: a[0] if isinstance(a[0], str) else (a[0].decode(*a[1:]) if isinstance(a[0], bytes) and
                                                             len(a) > 1 else str(a[0])),
    "bytes": lambda a: bytes(a[0]) if isinstance(a[0], list) else a[0].encode(*a[1:]),
    "bytearray": lambda a: bytes(a[0]) if isinstance(a[0], list) else a[0].encode(*a[1:]),
}
_SAFE_CODECS = {"rot13", "rot_13", "rot-13", "hex", "hex_codec", "base64", "base64_codec", "base_64", "utf-8", "utf8",
                "latin-1", "latin1", "ascii", "unicode_escape", "zlib", "zlib_codec", "bz2", "bz2_codec"}


def _fold_function(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if name in _DECODERS and args:
        return _safe(lambda: _DECODERS[name](args))
    if name in ("zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress") and args:
        return _decompress(name.split(".")[0], args[0])
    if name in ("codecs.decode", "codecs.encode") and args:
        encoding = str(args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")).lower()
        if encoding not in _SAFE_CODECS:
            return UNKNOWN
        if encoding in ("zlib", "zlib_codec", "bz2", "bz2_codec") and name == "codecs.decode":
            return _decompress(encoding.split("_")[0], args[0])
        return _safe(lambda: getattr(codecs, name.split(".")[1])(args[0], encoding))
    return UNKNOWN


def _may_resolve(node: ast.expr) -> bool:
    """Cheap filter: only names, attributes, constants and calls/operations on them can fold or resolve."""
    return isinstance(node, (ast.Constant, ast.Name, ast.Attribute, ast.Call, ast.BinOp, ast.JoinedStr,
                             ast.Subscript, ast.List, ast.Tuple, ast.UnaryOp))


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")
