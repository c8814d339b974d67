"""Chat templates (tokenizer_config.json `chat_template`, chat_template.json, *.jinja; GGUF
tokenizer.chat_template via gguf.py): parsed with Jinja2's parser and walked, never rendered."""
from __future__ import annotations

import functools
from collections.abc import Iterator
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
    from jinja2 import Environment, TemplateSyntaxError, nodes

    data = _data()

    def finding(rule: str, line: int | None, evidence: str) -> Finding:
        location = f"{where} line {line}" if line else where
        return rules.finding(rule, file=file, location=location, evidence=evidence, scanner=scanner)

    if len(source.encode("utf-8", "replace")) > data["max_template_bytes"]:
        return [finding("TEMPLATE-LIMIT", None, f"template of {len(source)} chars > {data['max_template_bytes']} bytes")]
    try:
        tree = Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _generation_tag()]).parse(source)
    except TemplateSyntaxError as exc:
        return [finding("TEMPLATE-UNPARSEABLE", exc.lineno, f"Jinja2 syntax error: {exc.message}")]
    except RecursionError:
        return [finding("TEMPLATE-LIMIT", None, "template nested too deeply for the parser")]
    escape = set(data["escape_attributes"])
    dangerous = set(data["dangerous_attributes"])
    gadgets = set(data["gadget_names"])
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()

    def report(rule: str, node: Any, evidence: str) -> None:
        if (rule, evidence) not in seen:
            seen.add((rule, evidence))
            out.append(finding(rule, getattr(node, "lineno", None), evidence))

    def classify(name: str, node: Any, how: str) -> None:
        if name in escape or (name.startswith("__") and name.endswith("__") and len(name) > 4):
            report("TEMPLATE-SANDBOX-ESCAPE", node, f"{how} {name!r}")
        elif name in dangerous:
            report("TEMPLATE-DANGEROUS-NAME", node, f"{how} {name!r}")

    stack: list[tuple[Any, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > data["max_nodes"] or depth > 500:
            out.append(finding("TEMPLATE-LIMIT", None, f"more than {data['max_nodes']} nodes or depth > 500"))
            break
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr):
                classify(node.attr, node, "attribute")
            if isinstance(node.node, nodes.Name) and node.node.name in gadgets:
                report("TEMPLATE-DANGEROUS-NAME", node, f"reaches into Jinja global {node.node.name!r}")
        elif isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name.startswith("__"):
                classify(node.name, node, "name")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            # strings used as keys (x['__globals__']); plain words like 'system' are ordinary role names
            if any(word in node.value for word in escape if word.startswith("__")):
                report("TEMPLATE-SANDBOX-ESCAPE", node, f"string {node.value[:80]!r}")
        elif isinstance(node, nodes.Filter) and node.name in data["dangerous_filters"]:
            report("TEMPLATE-DANGEROUS-NAME", node, f"filter {node.name!r} (attribute access built at render time)")
        elif isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            report("TEMPLATE-IMPORT", node, f"{{% {type(node).__name__.lower()} %}} of {_describe(node.template)}")
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return out


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
    for rec in ctx.files_named("tokenizer_config.json", "chat_template.json", "processor_config.json"):
        yield from _scan_config(ctx, rec)
    for rec in ctx.files_named(".jinja", ".jinja2", ".j2"):
        text, truncated = ctx.read_text(rec)
        if truncated:
            yield rules.finding("TEMPLATE-LIMIT", file=rec.path, evidence="template larger than the text limit",
                                scanner=NAME)
            continue
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
