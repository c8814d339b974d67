"""Chat templates (tokenizer_config.json `chat_template`, chat_template.json, *.jinja; GGUF
tokenizer.chat_template via gguf.py): parsed with Jinja2's parser and walked, never rendered."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from auditor import rules
from auditor.facts import TemplateFacts
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import DepthError, strict_json

NAME = "templates"


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("templates.yaml")


def check_template(source: str, *, file: str, where: str, scanner: str = NAME) -> list[Finding]:
    """Findings for one template text; `where` prefixes locations (e.g. "chat_template 'default'")."""
    from jinja2 import Environment, TemplateSyntaxError

    data = _data()
    walker = Walker(file, where, scanner)
    if len(source.encode("utf-8", "replace")) > data["max_template_bytes"]:
        walker.report("TEMPLATE-LIMIT", None, f"template of {len(source)} chars > {data['max_template_bytes']} bytes")
        return walker.out
    try:
        tree = Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _generation_tag()]).parse(source)
    except TemplateSyntaxError as exc:
        walker.report("TEMPLATE-UNPARSEABLE", exc.lineno, f"Jinja2 syntax error: {exc.message}")
        return walker.out
    except RecursionError:
        walker.report("TEMPLATE-LIMIT", None, "template nested too deeply for the parser")
        return walker.out
    except (ValueError, OverflowError, MemoryError) as exc:     # e.g. an integer literal past int()'s digit limit
        walker.report("TEMPLATE-UNPARSEABLE", None, f"Jinja2 cannot read the template: {type(exc).__name__}: "
                                                    f"{str(exc)[:200]}")
        return walker.out
    walker.text_checks(source)
    walker.walk(tree)
    return walker.out


@functools.cache
def _generation_tag() -> type:
    """transformers' chat environment accepts `{% generation %}...{% endgeneration %}`; so must we."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class GenerationTag(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return GenerationTag


def _describe(node: Any) -> str:
    value = getattr(node, "value", None)
    return repr(value) if value is not None else type(node).__name__


def scan(ctx: ScanContext) -> Iterator[Finding]:
    configs = ctx.files_named("tokenizer_config.json", "chat_template.json", "processor_config.json")
    yield from ctx.per_file(configs, lambda rec: _scan_config(ctx, rec), NAME)
    yield from ctx.per_file(ctx.files_named(".jinja", ".jinja2", ".j2"), lambda rec: _scan_jinja(ctx, rec), NAME)


def _scan_jinja(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    text, truncated = ctx.read_text(rec)
    if truncated:
        yield rules.finding("TEMPLATE-LIMIT", file=rec.path, evidence="template larger than the text limit",
                            scanner=NAME)
        return
    ctx.facts.add_file(TemplateFacts, rec.path, {"templates": ["(file)"]})
    yield from check_template(text, file=rec.path, where="template")


def _scan_config(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    text, truncated = ctx.read_text(rec)
    if truncated:
        yield rules.finding("TEMPLATE-LIMIT", file=rec.path, evidence="config larger than the text limit", scanner=NAME)
        return
    try:
        config, _ = strict_json(text, ctx.options.limits.max_json_depth, what=rec.path)
    except (DepthError, ValueError) as exc:
        if "chat_template" in text:
            yield rules.finding("TEMPLATE-UNPARSEABLE", file=rec.path, evidence=str(exc), scanner=NAME)
        return
    raw = config.get("chat_template") if isinstance(config, dict) else None
    if raw is None:
        return
    templates: list[tuple[str, Any]] = []
    if isinstance(raw, str):
        templates.append(("chat_template", raw))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            name = item.get("name", i) if isinstance(item, dict) else i
            templates.append((f"chat_template {name!r}", item.get("template") if isinstance(item, dict) else item))
    else:
        templates.append(("chat_template", raw))
    for where, template in templates:
        if not isinstance(template, str):
            yield rules.finding("TEMPLATE-UNPARSEABLE", file=rec.path, location=where,
                                evidence=f"template is a {type(template).__name__}, not a string", scanner=NAME)
            continue
        yield from check_template(template, file=rec.path, where=where)
    ctx.facts.add_file(TemplateFacts, rec.path, {"templates": [w for w, _ in templates]})


MAX_BUILT_STRING = 4096     # strings evaluated from the template's own constants are cut here
MAX_EVAL_DEPTH = 32


class Walker:
    """Walks one parsed template. Besides attribute syntax it evaluates the strings a template builds from
    its own constants (`~`, `+`, `%`, `|join`, `|reverse`, `|format`, slices, `{% set %}` names), so a name
    reached by subscript or filter (`''[('__ssalc__'|reverse)]`, `map(attribute=...)`) is checked too."""

    def __init__(self, file: str, where: str, scanner: str) -> None:
        self.file, self.where, self.scanner = file, where, scanner
        self.out: list[Finding] = []
        self.seen: set[tuple[str, str]] = set()
        self.assigned: dict[str, Any] = {}
        self.namespaces: set[str] = set()
        data = _data()
        self.escape = set(data["escape_attributes"])
        self.dangerous = set(data["dangerous_attributes"])
        self.gadgets = set(data["gadget_names"])

    def report(self, rule: str, line: int | None, evidence: str) -> None:
        if (rule, evidence) not in self.seen:
            self.seen.add((rule, evidence))
            location = f"{self.where} line {line}" if line else self.where
            self.out.append(rules.finding(rule, file=self.file, location=location, evidence=evidence,
                                          scanner=self.scanner))

    def is_escape(self, name: str) -> bool:
        return name in self.escape or (name.startswith("__") and name.endswith("__") and len(name) > 4)

    def classify(self, name: str, node: Any, how: str, *, plain_names: bool = True) -> None:
        for part in name.split(".") if "." in name else [name]:
            if self.is_escape(part):
                self.report("TEMPLATE-SANDBOX-ESCAPE", node.lineno, f"{how} {name!r}")
            elif plain_names and part in self.dangerous:
                self.report("TEMPLATE-DANGEROUS-NAME", node.lineno, f"{how} {name!r}")

    def text_checks(self, source: str) -> None:
        """Hidden instructions and exfiltration URLs are in the template's text, not its syntax."""
        data = _data()
        for pattern in data["hidden_instruction_patterns"]:
            for match in re.finditer(pattern, source, re.I):
                line = source.count("\n", 0, match.start()) + 1
                self.report("TEMPLATE-HIDDEN-INSTRUCTION", line, f"{match.group()[:200]!r}")
        for pattern in data["exfiltration_url_patterns"]:
            for match in re.finditer(pattern, source, re.I):
                line = source.count("\n", 0, match.start()) + 1
                self.report("TEMPLATE-EXFIL-URL", line, f"{match.group()[:200]!r}")

    def walk(self, tree: Any) -> None:
        from jinja2 import nodes

        for assign in tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name):
                self.assigned.setdefault(assign.target.name, assign.node)
                call = assign.node
                if isinstance(call, nodes.Call) and isinstance(call.node, nodes.Name) and call.node.name == "namespace":
                    self.namespaces.add(assign.target.name)
        limit = _data()["max_nodes"]
        stack: list[tuple[Any, int]] = [(tree, 0)]
        count = 0
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > limit or depth > 500:
                self.report("TEMPLATE-LIMIT", None, f"more than {limit} nodes or depth > 500")
                return
            self.visit(node)
            stack.extend((child, depth + 1) for child in node.iter_child_nodes())

    def visit(self, node: Any) -> None:
        from jinja2 import nodes

        if isinstance(node, nodes.Getattr):
            on_namespace = isinstance(node.node, nodes.Name) and node.node.name in self.namespaces
            self.classify(node.attr, node, "attribute", plain_names=not on_namespace)
            self.gadget(node)
        elif isinstance(node, nodes.Getitem):
            self.subscript(node)
            self.gadget(node)
        elif isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name.startswith("__"):
                self.classify(node.name, node, "name")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            # strings used as keys (x['__globals__']); plain words like 'system' are ordinary role names
            if any(word in node.value for word in self.escape if word.startswith("__")):
                self.report("TEMPLATE-SANDBOX-ESCAPE", node.lineno, f"string {node.value[:80]!r}")
        elif isinstance(node, nodes.Filter):
            self.filter(node)
        elif isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            self.report("TEMPLATE-IMPORT", node.lineno, f"{{% {type(node).__name__.lower()} %}} of {_describe(node.template)}")
        if isinstance(node, (nodes.Concat, nodes.Add, nodes.Mod, nodes.Mul, nodes.Filter)):
            self.built_string(node)

    def gadget(self, node: Any) -> None:
        from jinja2 import nodes

        if isinstance(node.node, nodes.Name) and node.node.name in self.gadgets:
            self.report("TEMPLATE-DANGEROUS-NAME", node.lineno, f"reaches into Jinja global {node.node.name!r}")

    def subscript(self, node: Any) -> None:
        from jinja2 import nodes

        if isinstance(node.arg, nodes.Const):
            return          # a literal key: the Const check sees it
        name = self.value(node.arg)
        if isinstance(name, str):
            self.classify(name, node, "subscript built as")

    def built_string(self, node: Any) -> None:
        value = self.value(node)
        if isinstance(value, str) and any(word in value for word in self.escape if word.startswith("__")):
            self.report("TEMPLATE-SANDBOX-ESCAPE", node.lineno, f"string built at render time {value[:80]!r}")

    def filter(self, node: Any) -> None:
        data = _data()
        if node.name in data["dangerous_filters"]:
            self.report("TEMPLATE-DANGEROUS-NAME", node.lineno,
                        f"filter {node.name!r} (attribute access built at render time)")
            if node.args:
                name = self.value(node.args[0])
                if isinstance(name, str):
                    self.classify(name, node, f"filter {node.name!r} of")
        if node.name == "map" and node.args:
            inner = self.value(node.args[0])
            if isinstance(inner, str) and inner in data["dangerous_filters"]:
                self.report("TEMPLATE-DANGEROUS-NAME", node.lineno, f"map({inner!r}) applies filter {inner!r}")
                if len(node.args) > 1:
                    name = self.value(node.args[1])
                    if isinstance(name, str):
                        self.classify(name, node, f"map({inner!r}) of")
        argument = self.attribute_argument(node)
        if argument is not None:
            self.attribute_name(node, argument)

    def attribute_argument(self, node: Any) -> Any:
        """The node naming the attribute a filter looks up (`map(attribute=)`, `selectattr('x')`...)."""
        positional = _data()["attribute_filters"].get(node.name)
        if positional is None:
            return None
        for kwarg in node.kwargs:
            if kwarg.key == "attribute":
                return kwarg.value
        if positional == "first" and node.args:
            return node.args[0]
        return None

    def attribute_name(self, node: Any, argument: Any) -> None:
        from jinja2 import nodes

        name = self.value(argument)
        if isinstance(name, str):
            # real templates use selectattr('role'...), map(attribute='name'): only escapes are findings
            self.classify(name, node, f"filter {node.name!r} attribute", plain_names=False)
        elif not isinstance(argument, nodes.Const):
            self.report("TEMPLATE-DANGEROUS-NAME", node.lineno,
                        f"filter {node.name!r} looks up an attribute whose name is computed at render time")

    def value(self, node: Any, depth: int = 0) -> Any:
        """The string (or list of strings) `node` evaluates to from the template's constants, else None."""
        if depth > MAX_EVAL_DEPTH:
            return None
        result = _evaluate(self, node, depth)
        if isinstance(result, str) and len(result) > MAX_BUILT_STRING:
            return result[:MAX_BUILT_STRING]
        return result


def _evaluate(walker: Walker, node: Any, depth: int) -> Any:
    from jinja2 import nodes

    def sub(child: Any) -> Any:
        return walker.value(child, depth + 1)

    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, (str, int)) and not isinstance(node.value, bool) else None
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in walker.assigned:
        return sub(walker.assigned[node.name])
    if isinstance(node, (nodes.List, nodes.Tuple, nodes.Concat)):
        return _sequence(node, sub)
    if isinstance(node, (nodes.Add, nodes.Mul, nodes.Mod)):
        return _binary(node, sub(node.left), sub(node.right))
    if isinstance(node, nodes.Getitem):
        return _slice(node, sub(node.node), walker, depth)
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _apply_filter(node.name, sub(node.node), [sub(a) for a in node.args])
    return None


def _sequence(node: Any, sub: Callable[[Any], Any]) -> Any:
    """A list/tuple of strings, or the string a `~` concatenation makes."""
    from jinja2 import nodes

    if isinstance(node, nodes.Concat):
        parts = [sub(n) for n in node.nodes]
        return "".join(str(p) for p in parts) if all(isinstance(p, (str, int)) for p in parts) else None
    items = [sub(item) for item in node.items]
    return items if all(isinstance(i, str) for i in items) else None


def _binary(node: Any, left: Any, right: Any) -> Any:
    from jinja2 import nodes

    if isinstance(node, nodes.Add) and isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(node, nodes.Mul) and isinstance(left, str) and isinstance(right, int):
        return left * max(0, min(right, MAX_BUILT_STRING // max(1, len(left))))
    if isinstance(node, nodes.Mod) and isinstance(left, str) and right is not None:
        return _percent(left, tuple(right) if isinstance(right, list) else right)
    return None


def _slice(node: Any, base: Any, walker: Walker, depth: int) -> Any:
    from jinja2 import nodes

    if not isinstance(base, (str, list)) or not isinstance(node.arg, nodes.Slice):
        return None
    bounds = [None if part is None else walker.value(part, depth + 1)
              for part in (node.arg.start, node.arg.stop, node.arg.step)]
    if not all(b is None or isinstance(b, int) for b in bounds) or bounds[2] == 0:
        return None
    return base[slice(*bounds)]


_STRING_FILTERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower, "upper": str.upper, "title": str.title, "capitalize": str.capitalize,
    "trim": str.strip, "string": str, "reverse": lambda v: v[::-1]}


def _apply_filter(name: str, value: Any, args: list[Any]) -> Any:
    if isinstance(value, str) and name in _STRING_FILTERS:
        return _STRING_FILTERS[name](value)
    handler = _VALUE_FILTERS.get(name)
    return handler(value, args) if handler is not None and isinstance(value, (list, str)) else None


def _join(value: Any, args: list[Any]) -> Any:
    return (args[0] if args and isinstance(args[0], str) else "").join(value)


def _format(value: Any, args: list[Any]) -> Any:
    return _percent(value, tuple(args)) if isinstance(value, str) and None not in args else None


def _replace(value: Any, args: list[Any]) -> Any:
    if isinstance(value, str) and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        return value.replace(args[0], args[1])[:MAX_BUILT_STRING]
    return None


_VALUE_FILTERS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "reverse": lambda v, _: list(reversed(v)), "join": _join, "format": _format, "replace": _replace,
    "first": lambda v, _: v[0] if v else None, "last": lambda v, _: v[-1] if v else None}


def _percent(template: str, args: Any) -> str | None:
    try:
        return template % args
    except (TypeError, ValueError):
        return None
