"""The checks of pyast's analyzer on what it walked: calls, dispatch tables, computed lookups, stores.

A mixin of pyast._Analyzer: it needs `resolve`, `fold`, `pats`, `result` and `_hit` from there.
"""
from __future__ import annotations

import ast
import re
from typing import Any

from auditor.parsers import repoid
from auditor.parsers.pyfold import UNKNOWN, lenient_b64decode, preview

_GETATTR = {"getattr", "builtins.getattr"}
_IMPORTERS = {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
_HEX = re.compile(rb"^[0-9a-fA-F\s]+$")
_B64_CHARS = re.compile(rb"[A-Za-z0-9+/=_\-\s]")
_LOOKUP_BASES = ("globals()", "locals()", "builtins", "builtins.__dict__", "sys.modules")
MAX_PAYLOAD_DEPTH = 3             # exec(decoded code) analyzed this many levels deep


class CallChecks:
    pats: Any
    result: Any
    payload_depth: int
    line_offset: int
    loop_iters: dict[str, ast.expr]
    walker: Any

    def resolve(self, node: ast.AST, depth: int = 0, called: bool = False) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def fold(self, node: ast.AST, depth: int = 0) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _hit(self, category: str, name: str, node: ast.AST, when: str, computed: bool = False,
             detail: str = "") -> None:  # pragma: no cover
        raise NotImplementedError

    # --- calls -------------------------------------------------------------------------------------------

    def _check_call(self, node: ast.Call, when: str) -> None:
        name = self.resolve(node.func, called=True)
        if name in _GETATTR and len(node.args) >= 2:
            self._check_getattr(node, when)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
            self._check_repo_arg(node, when, "pretrained_model_name_or_path")
        if not name:
            return
        if name in self.pats.file_loaders:
            self._record_load(node, when)
        if name in self.pats.repo_loaders:
            self._check_repo_arg(node, when, "model", keyword_only=True)
        category = self.pats.category(name)
        if category is None:
            self._check_url_loader(name, node, when)
            return
        if category == "unsafe-loader":
            if not self._loader_is_safe(name, node):
                self._hit(category, name, node, when, detail=self._loader_detail(name, node))
            return
        if category in ("dynamic-code", "dynamic-import"):
            if name in self.pats.prefix_category:   # exec itself, not a method of an object exec returned
                self._check_dynamic(category, name, node, when)
            return
        self._hit(category, name, node, when, detail=self._call_detail(node))

    def _call_detail(self, node: ast.Call) -> str:
        """The endpoint or command a reaching call names: base_url=, host=, a URL or argv constant."""
        for kw in node.keywords:
            if kw.arg in self.pats.endpoint_keywords:
                value = self.fold(kw.value)
                shown = preview(value) if value is not UNKNOWN else "<computed>"
                return f"{kw.arg}={shown}"
        for arg in node.args[:2]:
            value = self.fold(arg)
            if isinstance(value, str) and ("://" in value[:16] or any(t in value for t in self.pats.compilers)):
                return f"{preview(value)}"
            if isinstance(value, list) and value and isinstance(value[0], str) and value[0] in self.pats.compilers:
                return f"native compiler {value[0]}"
        return ""

    def _check_url_loader(self, name: str, node: ast.Call, when: str) -> None:
        if name in self.pats.remote_code_loaders:
            trust = next((k.value for k in node.keywords if k.arg == "trust_remote_code"), None)
            if trust is not None and self.fold(trust) is not False:
                self._hit("hub-download", name, node, when, detail="trust_remote_code: runs the dataset's own code")
                return
        if name in self.pats.url_loaders and node.args:
            url = self.fold(node.args[0])
            if isinstance(url, str) and "://" in url[:16] and not url.startswith("file://"):
                self._hit("network", name, node, when, detail=f"loads {url[:200]}")

    def _record_load(self, node: ast.Call, when: str) -> None:
        """spec_from_file_location / SourceFileLoader / run_path: the files whose names appear are code."""
        names = [c.value for arg in [*node.args, *(k.value for k in node.keywords)] for c in ast.walk(arg)
                 if isinstance(c, ast.Constant) and isinstance(c.value, str) and 0 < len(c.value) < 300]
        if names:
            self.result.loads.append((getattr(node, "lineno", 0) + self.line_offset, tuple(names), when))

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
        loader = kwargs.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
        if loader is None:
            return False
        resolved = self.resolve(loader) or (loader.id if isinstance(loader, ast.Name) else "")
        return resolved in rule["safe_loaders"] or resolved.rsplit(".", 1)[-1] in rule["safe_loaders"]

    def _loader_detail(self, name: str, node: ast.Call) -> str:
        keyword = (self.pats.conditional.get(name) or {}).get("safe_keyword")
        if not keyword:
            return ""
        value = next((k.value for k in node.keywords if k.arg == keyword), None)
        if value is None:
            return f"no {keyword}=True"
        folded = self.fold(value)
        return f"{keyword} is computed" if folded is UNKNOWN else f"{keyword}={folded!r}"

    # --- exec / eval / import by name ------------------------------------------------------------------

    def _check_dynamic(self, category: str, name: str, node: ast.Call, when: str) -> None:
        arg = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("source", "name", "object", "code", "stmt")), None)
        if arg is None:
            self._hit(category, name, node, when, computed=True, detail="no visible argument")
            return
        if isinstance(arg, ast.Constant):
            self._after_fold(category, name, node, when, arg.value)
            return
        value = self.fold(arg)
        if value is UNKNOWN:
            choices = self._choices(arg) if category == "dynamic-import" else None
            if choices:
                self._static_choices(name, node, when, choices)
                return
            opened = self._opened_files(arg)
            if opened:
                self.result.loads.append((getattr(node, "lineno", 0) + self.line_offset, tuple(opened), when))
            self._hit(category, name, node, when, computed=True, detail=self._taint(arg))
            return
        if category == "dynamic-code" and _is_literal(value):
            return
        self._hit("obfuscation", name, node, when, detail=f"argument folds to {preview(value)}")
        self._after_fold(category, name, node, when, value)

    def _choices(self, arg: ast.AST) -> list[str] | None:
        """The constant names a computed import can take: TABLE[key] of a constant table, a loop over a list."""
        values: Any = UNKNOWN
        if isinstance(arg, ast.Subscript):
            table = self.fold(arg.value)
            values = list(table.values()) if isinstance(table, dict) else table
        elif isinstance(arg, ast.Name) and arg.id in self.loop_iters:
            values = self.fold(self.loop_iters[arg.id])
        if isinstance(values, (list, tuple)) and values and all(isinstance(v, str) for v in values):
            return list(values)
        return None

    def _static_choices(self, name: str, node: ast.Call, when: str, choices: list[str]) -> None:
        network = [c for c in choices if self.pats.is_network_module(c)]
        sensitive = [c for c in choices if c.split(".")[0] in self.pats.sensitive_modules]
        if network or sensitive:
            self._hit("dynamic-import", name, node, when, computed=True,
                      detail=f"one of a constant table that includes {', '.join((network + sensitive)[:5])}")
            return
        self._hit("dynamic-import", name, node, when, detail=f"one of {len(choices)} names in a constant table: "
                                                             f"{', '.join(choices[:8])}")

    def _opened_files(self, arg: ast.AST) -> list[str]:
        found = []
        for sub in ast.walk(arg):
            if isinstance(sub, ast.Call) and self.resolve(sub.func) in ("open", "builtins.open", "io.open") \
                    and sub.args:
                found += [c.value for c in ast.walk(sub.args[0]) if isinstance(c, ast.Constant)
                          and isinstance(c.value, str)]
        return found

    def _after_fold(self, category: str, name: str, node: ast.Call, when: str, value: Any) -> None:
        if category == "dynamic-import":
            detail = f"imports {value!r}" if isinstance(value, str) else ""
            if isinstance(value, str) and self.pats.is_network_module(value):
                self.result.imports.setdefault(value, getattr(node, "lineno", 0) + self.line_offset)
            self._hit(category, name, node, when, detail=detail)
            return
        if _is_literal(value):
            return     # eval("[1, 2]") evaluates a literal: no code runs
        self._hit(category, name, node, when, detail=f"runs {preview(value)}")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and self.payload_depth < MAX_PAYLOAD_DEPTH:
            from auditor.parsers.pyast import Hit, analyze
            inner = analyze(value, payload_depth=self.payload_depth + 1)
            line = getattr(node, "lineno", 0) + self.line_offset
            for hit in inner.hits:
                self.result.hits.append(Hit(hit.category, hit.name, line, hit.call, bool(when), hit.computed,
                                            f"inside the code run by {name}(): {hit.detail}".rstrip(": "), when))
            for module in inner.imports:
                self.result.imports.setdefault(module, line)

    def _taint(self, arg: ast.AST) -> str:
        found: list[str] = []
        for sub in ast.walk(arg):
            if isinstance(sub, (ast.Call, ast.Attribute, ast.Name)):
                target = sub.func if isinstance(sub, ast.Call) else sub
                resolved = self.resolve(target) or ""
                for label, prefixes in self.pats.tainted.items():
                    if resolved and label not in found and any(
                            resolved == p or resolved.startswith(p + ".") for p in prefixes):
                        found.append(label)
        return "computed from " + ", ".join(found) if found else "computed argument"

    # --- lookups by computed name -------------------------------------------------------------------------

    def _check_getattr(self, node: ast.Call, when: str) -> None:
        base = self.resolve(node.args[0])
        attr_node = node.args[1]
        attr = self.fold(attr_node)
        if attr is UNKNOWN:
            if base:
                sensitive = base in self.pats.sensitive_modules or base.split(".")[0] in self.pats.sensitive_modules
                self._hit("getattr", base, node, when, computed=True,
                          detail="sensitive module" if sensitive else "module")
        elif not isinstance(attr_node, ast.Constant) and base:
            self._hit("obfuscation", f"{base}.{attr}", node, when, detail=f"name folds to {attr!r}")

    def _check_subscript(self, node: ast.Subscript, when: str) -> None:
        """globals()["__builtins__"], vars(m)[x], sys.modules[x], builtins.__dict__[x]: lookups by computed key.
        High on builtins and when the key comes from the environment, input, the network or a decoded
        payload; sys.modules[__name__] is the module itself."""
        base = self.resolve(node.value)
        if base is None or not (base in _LOOKUP_BASES or base.endswith(".__dict__")):
            return
        key = self.fold(node.slice)
        if key is UNKNOWN:
            if isinstance(node.slice, ast.Name) and node.slice.id in ("__name__", "__package__"):
                return
            sensitive = base.startswith("builtins") or self._taint(node.slice) != "computed argument"
            self._hit("getattr", base, node, when, computed=True, detail="sensitive module" if sensitive else "module")
        elif base in ("globals()", "locals()") and key == "__builtins__":
            self._hit("getattr", "builtins", node, when, computed=True, detail="sensitive module")

    def _check_reference(self, node: ast.expr, when: str) -> None:
        """A dangerous callable stored in a table (dispatch by key hides which one runs)."""
        name = self.resolve(node)
        if not name:
            return
        category = self.pats.category(name)
        if name in _GETATTR or name in _IMPORTERS or category in ("dynamic-code", "dynamic-import", "process"):
            self._hit(category or "dynamic-import", name, node, when, computed=True,
                      detail="stored in a dispatch table: what runs is chosen at run time")

    def _check_store(self, target: ast.expr, value: ast.expr, when: str) -> None:
        """os.environ["HF_ENDPOINT"] = ...; requests.Session.request = f (monkeypatching a library)."""
        if isinstance(target, ast.Subscript):
            base = self.resolve(target.value)
            key = self.fold(target.slice)
            if base in ("os.environ", "os.environb") and isinstance(key, str) and key in self.pats.hub_env_vars:
                shown = self.fold(value)
                self._hit("hub-endpoint", key, target, when,
                          detail=f"{key}={preview(shown) if shown is not UNKNOWN else '<computed>'}")
            return
        if isinstance(target, ast.Attribute):
            base = self.resolve(target.value)
            if not base or base.split(".")[0] not in self.result.imported_tops:
                return
            reaching = self.pats.category(f"{base}.{target.attr}") in ("network", "process", "dynamic-code")
            if self.walker.is_local_callable(value) or reaching:
                self._hit("monkeypatch", f"{base}.{target.attr}", target, when,
                          detail=f"replaces {base}.{target.attr} for every caller in the process")

    def _check_env_call(self, node: ast.Call, name: str, when: str) -> None:
        if name in ("os.environ.setdefault", "os.environ.update", "os.putenv") and node.args:
            key = self.fold(node.args[0])
            if isinstance(key, str) and key in self.pats.hub_env_vars:
                self._hit("hub-endpoint", key, node, when, detail=f"sets {key}")

    def _check_repo_arg(self, node: ast.Call, when: str, keyword: str, keyword_only: bool = False) -> None:
        arg = next((k.value for k in node.keywords if k.arg == keyword), None)
        if arg is None and node.args and not keyword_only:
            arg = node.args[0]
        if arg is None:
            return
        value = self.fold(arg)
        if isinstance(value, str) and repoid.is_repo_id(value) and not value.startswith((".", "/")):
            trust = next((k.value for k in node.keywords if k.arg == "trust_remote_code"), None)
            remote = trust is not None and self.fold(trust) is True
            self._hit("from-pretrained", value, node, when,
                      detail=f"loads repo {value}" + (" with trust_remote_code=True" if remote else ""))

    def _check_string(self, node: ast.Constant, when: str) -> None:
        value = node.value
        if isinstance(value, str) and value in self.pats.network_handler_strings:
            self._hit("network", value, node, when, detail="names a logging handler that ships records")
            return
        if isinstance(value, (str, bytes)) and len(value) >= self.pats.blob_min_chars:
            self._check_blob(node, when)

    def _check_blob(self, node: ast.Constant, when: str) -> None:
        value: Any = node.value
        raw = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
        head = raw[:4096]
        decoded: Any = b""
        if _HEX.match(head):
            decoded = _try(lambda: bytes.fromhex("".join(head.decode().split())[:128]))
        elif len(_B64_CHARS.findall(head)) >= 0.95 * len(head):   # as lenient as b64decode: "$QlpoOTFB..."
            decoded = _try(lambda: lenient_b64decode(head[:4096])[:128])
            if decoded is UNKNOWN:
                decoded = _try(lambda: lenient_b64decode(head[:4096], b"-_")[:128])
        if isinstance(value, bytes):
            decoded = decoded if isinstance(decoded, bytes) and decoded else value[:128]
        if not isinstance(decoded, bytes):
            return
        for magic, kind in self.pats.blob_magic:
            if decoded.startswith(magic):
                self._hit("blob", "", node, when, detail=f"{len(value)} characters encoding {kind} data")
                return


def _try(fn: Any) -> Any:
    try:
        return fn()
    except (ValueError, TypeError):
        return UNKNOWN


def _is_literal(value: Any) -> bool:
    """eval() of text that ast.literal_eval accepts runs no code."""
    if not isinstance(value, str) or len(value) > 100_000:
        return False
    try:
        ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True
