"""One bounded traversal of a module's AST that knows what runs while the module is imported.

The walker collects calls, long strings, subscripts, dispatch-table references and attribute stores,
each with `when`: "" if it runs only when called, else why it runs on import. Function bodies are
deferred; a body runs on import when the module calls the function at import time, uses it as a
decorator, hands it to a hook registrar (atexit, threading, sys.settrace, import hooks...),
instantiates its class (__init__/__new__, Thread.run), uses its class as a metaclass or base
(__init_subclass__), or when its class derives from a class that loading instantiates
(PretrainedConfig.__init__ runs on AutoConfig). Bodies found that way are walked as import time,
transitively; the rest as called.
"""
from __future__ import annotations

import ast
from typing import Any

AT_IMPORT = "at import time"
MAX_NODES = 2_000_000
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_CONTAINERS = (ast.List, ast.Tuple, ast.Set)

Item = tuple[ast.AST, str, str]     # (node, when, owner qualname)


class _Walker:
    def __init__(self, analyzer: Any):
        self.a = analyzer
        self.calls: list[tuple[ast.Call, str]] = []
        self.strings: list[tuple[ast.Constant, str]] = []
        self.subscripts: list[tuple[ast.Subscript, str]] = []
        self.refs: list[tuple[ast.expr, str]] = []
        self.stores: list[tuple[ast.expr, ast.expr, str]] = []
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.deferred: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda] = {}
        self.eager: dict[str, str] = {}
        self.factories: set[str] = set()
        self.visited = 0

    # --- driver ---------------------------------------------------------------------------------------

    def walk(self) -> None:
        self._drain([(self.a.tree, AT_IMPORT, "")])
        while True:
            ready = [q for q in self.eager if q in self.deferred]
            if not ready:
                break
            for qual in ready:
                fn = self.deferred.pop(qual)
                self._drain(self._body(fn, self.eager[qual], qual))
                if qual in self.factories:     # @factory(args): what the factory returns also runs now
                    for inner in [q for q in self.deferred if q.startswith(qual + ".")]:
                        self.eager.setdefault(inner, self.eager[qual])
        for qual, fn in list(self.deferred.items()):
            self._drain(self._body(fn, "", qual))
        self.deferred.clear()

    @staticmethod
    def _body(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, when: str, qual: str) -> list[Item]:
        body = fn.body if isinstance(fn.body, list) else [fn.body]
        return [(n, when, qual) for n in reversed(body)]

    def _drain(self, stack: list[Item]) -> None:
        while stack:
            node, when, owner = stack.pop()
            self.visited += 1
            if self.visited > MAX_NODES:
                self.a.result.error = f"more than {MAX_NODES} syntax nodes; the rest was not analyzed"
                self.a.result.limit = self.a.result.error
                stack.clear()
                return
            if self._leaf(node, when):
                continue
            if isinstance(node, (*_FUNCS, ast.Lambda)):
                self._function(node, when, owner, stack)
                continue
            if isinstance(node, ast.ClassDef):
                self._class(node, when, owner, stack)
                continue
            if isinstance(node, ast.If) and _is_main_guard(node.test):
                stack.extend((n, when, owner) for n in reversed(node.orelse))
                stack.extend((n, "", owner) for n in reversed(node.body))
                continue
            self._collect(node, when, owner)
            children: list[Item] = []      # pushed reversed: popped in source order (a def before its call)
            for field_name in node._fields:
                value = getattr(node, field_name, None)
                if isinstance(value, ast.AST):
                    children.append((value, when, owner))
                elif isinstance(value, list):
                    children.extend((item, when, owner) for item in value if isinstance(item, ast.AST))
            stack.extend(reversed(children))

    def _leaf(self, node: ast.AST, when: str) -> bool:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                self.a.bound[node.id] += 1
            return True
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and (len(node.value) >= self.a.pats.blob_min_chars or
                                                node.value in self.a.pats.network_handler_strings):
                self.strings.append((node, when))
            elif isinstance(node.value, bytes) and len(node.value) >= self.a.pats.blob_min_chars:
                self.strings.append((node, when))
            return True
        return False

    def _collect(self, node: ast.AST, when: str, owner: str) -> None:
        if isinstance(node, ast.Call):
            self.calls.append((node, when))
            if when:
                self._eager_from_call(node, when, owner)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.a.import_(node)
        elif isinstance(node, ast.Assign):
            self._assign(node, when, owner)
        elif isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
            self.a.loop_iters[node.target.id] = node.iter
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            self.subscripts.append((node, when))
        elif isinstance(node, ast.Dict):
            self.refs.extend((e, when) for e in node.values if isinstance(e, (ast.Name, ast.Attribute)))

    def _assign(self, node: ast.Assign, when: str, owner: str) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.a.assigns[node.targets[0].id] = node.value
        if isinstance(node.value, _CONTAINERS):     # FUNCS = [eval, exec]: a table, not an isinstance tuple
            self.refs.extend((e, when) for e in node.value.elts if isinstance(e, (ast.Name, ast.Attribute)))
        for target in node.targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                self.stores.append((target, node.value, when))
                if when and isinstance(target, ast.Attribute):
                    self._eager_callable(node.value, f"{when} (replaces .{target.attr})", owner)

    # --- definitions ----------------------------------------------------------------------------------

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, when: str, owner: str,
                  stack: list[Item]) -> None:
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None:
                self.a.bound[arg.arg] += 1
        # decorators and defaults run when the def runs; the body only when called
        eager = list(getattr(node, "decorator_list", [])) + a.defaults + [k for k in a.kw_defaults if k is not None]
        stack.extend((n, when, owner) for n in eager)
        if isinstance(node, ast.Lambda):
            stack.append((node.body, "", owner))
            return
        self.a.bound[node.name] += 1
        qual = f"{owner}.{node.name}" if owner else node.name
        self.functions[qual] = node
        self.deferred[qual] = node
        if when:
            for deco in node.decorator_list:
                self._eager_decorator(deco, when, owner)

    def _class(self, node: ast.ClassDef, when: str, owner: str, stack: list[Item]) -> None:
        self.a.bound[node.name] += 1
        qual = f"{owner}.{node.name}" if owner else node.name
        self.classes[qual] = node
        stack.extend((n, when, owner) for n in [*node.decorator_list, *(k.value for k in node.keywords), *node.bases])
        body_when = f"{AT_IMPORT} (class body of {node.name})" if when else ""
        stack.extend((n, body_when, qual) for n in reversed(node.body))
        if not when:
            return
        for deco in node.decorator_list:
            self._eager_decorator(deco, when, owner)
        for base in node.bases:
            local = self._local_class(base, owner)
            if local:
                self._mark_methods(local, ("__init_subclass__", "__set_name__"),
                                   f"{AT_IMPORT} ({node.name} subclasses {local})")
            resolved = self.a.resolve(base) or (base.id if isinstance(base, ast.Name) else "")
            last = resolved.rsplit(".", 1)[-1]
            if last in self.a.pats.load_time_bases:
                self._mark_methods(qual, self.a.pats.load_time_methods,
                                   f"on load ({node.name} subclasses {last}, which loading instantiates)")
        for kw in node.keywords:
            meta = self._local_class(kw.value, owner) if kw.arg == "metaclass" else None
            if meta:
                self._mark_methods(meta, ("__new__", "__init__", "__prepare__"),
                                   f"{AT_IMPORT} (metaclass of {node.name})")

    # --- what makes a body run at import --------------------------------------------------------------

    def _eager_from_call(self, node: ast.Call, when: str, owner: str) -> None:
        line = getattr(node, "lineno", 0) + self.a.line_offset
        func = node.func
        name = func.id if isinstance(func, ast.Name) else ""
        target = self._local_function(name, owner) if name else None
        if target:
            self.eager.setdefault(target, f"{AT_IMPORT} (via {name}() at line {line})")
        cls = self._local_class(func, owner)
        if cls:
            methods = ["__new__", "__init__", "__post_init__"]
            if self._is_thread(cls):
                methods.append("run")
            self._mark_methods(cls, tuple(methods), f"{AT_IMPORT} ({self.classes[cls].name}() at line {line})")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("self", "cls"):
            method_owner = owner.rsplit(".", 1)[0]
            if method_owner in self.classes:
                self.eager.setdefault(f"{method_owner}.{func.attr}", when)
        resolved = self.a.resolve(func) or ""
        if resolved in self.a.pats.hook_registrars or resolved.rsplit(".", 1)[-1] in ("append", "insert") and \
                resolved.startswith(("sys.meta_path", "sys.path_hooks")):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                self._eager_callable(arg, f"{AT_IMPORT} (registered with {resolved} at line {line})", owner)

    def _eager_decorator(self, deco: ast.expr, when: str, owner: str) -> None:
        func = deco.func if isinstance(deco, ast.Call) else deco
        name = func.id if isinstance(func, ast.Name) else ""
        target = self._local_function(name, owner) if name else None
        if target:
            self.eager.setdefault(target, f"{AT_IMPORT} (decorator @{name})")
            if isinstance(deco, ast.Call):
                self.factories.add(target)

    def _eager_callable(self, value: ast.expr, why: str, owner: str) -> None:
        """A function, a class or an instance of a local class handed over: all of it may run now."""
        if isinstance(value, ast.Call):
            value = value.func
        if isinstance(value, ast.Name):
            target = self._local_function(value.id, owner)
            if target:
                self.eager.setdefault(target, why)
                return
        cls = self._local_class(value, owner)
        if cls:
            self._mark_methods(cls, None, why)

    def is_local_callable(self, value: ast.expr) -> bool:
        if isinstance(value, ast.Lambda):
            return True
        return isinstance(value, ast.Name) and (value.id in self.functions or value.id in self.classes)

    def _local_function(self, name: str, owner: str) -> str | None:
        if name in self.a.aliases:
            return None
        for qual in (f"{owner}.{name}" if owner else "", name):
            if qual and qual in self.functions:
                return qual
        return None

    def _local_class(self, node: ast.expr, owner: str) -> str | None:
        if not isinstance(node, ast.Name) or node.id in self.a.aliases:
            return None
        for qual in (f"{owner}.{node.id}" if owner else "", node.id):
            if qual and qual in self.classes:
                return qual
        return None

    def _mark_methods(self, cls: str, names: tuple[str, ...] | None, why: str) -> None:
        for item in self.classes[cls].body:
            if isinstance(item, _FUNCS) and (names is None or item.name in names):
                self.eager.setdefault(f"{cls}.{item.name}", why)

    def _is_thread(self, cls: str) -> bool:
        for base in self.classes[cls].bases:
            resolved = self.a.resolve(base) or ""
            if resolved in self.a.pats.thread_classes:
                return True
        return False


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")
