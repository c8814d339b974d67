"""Every URL, hostname and IP literal in every text file, classified by operator country and kind.

Hosts are classified with rules/endpoints.yaml. Origin-country infrastructure (countries in the
policy's `sensitive_origins`) is ENDPOINT-ORIGIN-<KIND>; the rest is ENDPOINT-OTHER. Severity depends
on where the endpoint appears: code that runs > configs > documentation (comments and docstrings
count as documentation). Bare hostnames (not in a URL) are only reported when they are classified,
so file names like `modeling.py` never become endpoints. One finding per host per file, listing lines.
"""
from __future__ import annotations

import ast
import bisect
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from auditor import rules
from auditor.model import Finding, Severity
from auditor.scanners import ScanContext

NAME = "endpoints"
MAX_TEXT_BYTES = 256 * 1024 * 1024     # files are read whole up to this; beyond it: ENDPOINT-LIMIT
MAX_LINES_LISTED = 20
MAX_METADATA_STRINGS = 200_000
CONTEXT_RANK = {"docs": 0, "config": 1, "code": 2}

# Linear-time patterns: no nested unbounded quantifiers. A URL runs to the first delimiter.
_URL = re.compile(r"""(?i)\b(?:https?|ftps?|wss?|s3|gs|oss|hdfs|sftp)://[^\s"'<>`(){}\[\]\\|^]{1,2048}""")
_HOST = re.compile(r"(?<![\w.-])(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}\.){1,10}[A-Za-z]{2,24}(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_REGION = re.compile(r"(?:^|[.-])((?:cn|us|ap|eu|me|sa|ca|af|hk)-[a-z]+(?:-\d+)?)(?=[.-])")
_DOC_NAMES = ("readme", "license", "licence", "notice", "copying", "citation", "changelog", "authors", "model_card")
_DOC_EXT = {".md", ".rst", ".txt", ".html", ".htm", ".adoc", ".org", ".tex", ".bib", ".cff"}
_CODE_EXT = {".py", ".sh", ".bash", ".zsh", ".ps1", ".bat", ".cmd", ".js", ".ts", ".rb", ".pl", ".lua", ".go", ".rs",
             ".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".java"}


@dataclass(frozen=True)
class HostInfo:
    host: str
    country: str = ""
    kind: str = ""
    operator: str = ""
    domain: str = ""
    region: str = ""


class Classifier:
    def __init__(self, data: dict[str, Any]):
        self.domains = {d["domain"].lower(): d for d in data["domains"]}
        self.tlds = {k.lower(): v for k, v in data["country_tlds"].items()}
        self.ignored = {h.lower() for h in data.get("ignored_hosts", ())}
        self.ignored_suffixes = tuple(s.lower() for s in data.get("ignored_suffixes", ()))
        self.data = data

    def ignored_host(self, host: str) -> bool:
        return host in self.ignored or host.endswith(self.ignored_suffixes)

    def classify(self, host: str) -> HostInfo:
        host = host.lower().rstrip(".")
        labels = host.split(".")
        region_match = _REGION.search(host)
        region = region_match.group(1) if region_match else ""
        for i in range(len(labels)):
            entry = self.domains.get(".".join(labels[i:]))
            if entry:
                return HostInfo(host, entry["country"], entry["kind"], entry.get("operator", ""), entry["domain"],
                                region)
        country = self.tlds.get(labels[-1], "")
        if country:
            return HostInfo(host, country, "tld", f".{labels[-1]} domain", "." + labels[-1], region)
        return HostInfo(host)


@functools.cache
def classifier() -> Classifier:
    return Classifier(rules.load("endpoints.yaml"))


def sensitive_origins(ctx: ScanContext) -> set[str]:
    value = ctx.setting("sensitive_origins") or classifier().data.get("default_sensitive_origins", ["CN"])
    return {str(v).upper() for v in value}


@dataclass
class _Seen:
    info: HostInfo
    example: str
    context: str
    locations: list[str] = field(default_factory=list)
    ip: bool = False


class Collector:
    """Aggregates endpoint sightings per (file, host) and turns them into findings."""

    def __init__(self, sensitive: set[str], scanner: str = NAME):
        self.sensitive = sensitive
        self.scanner = scanner
        self.seen: dict[tuple[str, str], _Seen] = {}
        self.cls = classifier()

    def add_text(self, file: str, text: str, context_of: Callable[[int, int], str],
                 location_of: Callable[[int], str] | None = None) -> None:
        """Search `text`; context_of(line, column) says code/config/docs for a match at that place."""
        newlines = [m.start() for m in re.finditer("\n", text)] if "\n" in text else []

        def where(pos: int) -> tuple[int, int]:
            line = bisect.bisect_left(newlines, pos)
            start = newlines[line - 1] + 1 if line else 0
            return line + 1, pos - start

        location_of = location_of or (lambda line: str(line))
        url_spans: list[tuple[int, int]] = []
        for m in _URL.finditer(text):
            url = m.group(0).rstrip(".,;:!?*'\"")
            host = _url_host(url)
            url_spans.append((m.start(), m.end()))
            if host:
                line, col = where(m.start())
                self._add(file, host, url, context_of(line, col), location_of(line), in_url=True)
        for m in _HOST.finditer(text):
            host = m.group(0).lower()
            info = self.cls.classify(host)
            if not info.country:
                continue
            line, col = where(m.start())
            self._add(file, host, host, context_of(line, col), location_of(line), in_url=False, info=info)
        for m in _IPV4.finditer(text):
            if _inside(url_spans, m.start()):
                continue
            try:
                addr = ipaddress.ip_address(m.group(0))
            except ValueError:
                continue
            if not addr.is_global:
                continue
            line, col = where(m.start())
            context = context_of(line, col)
            if context == "docs":
                continue   # version numbers and citations look like IPs; only code and configs count
            self._add(file, m.group(0), m.group(0), context, location_of(line), in_url=False, ip=True)

    def _add(self, file: str, host: str, example: str, context: str, location: str, *, in_url: bool,
             info: HostInfo | None = None, ip: bool = False) -> None:
        host = host.lower().rstrip(".")
        if not ip:
            if self.cls.ignored_host(host) or "." not in host:
                return
            try:
                ipaddress.ip_address(host)
                ip = True
            except ValueError:
                pass
        if ip:
            try:
                if not ipaddress.ip_address(host).is_global:
                    return
            except ValueError:
                return
        key = (file, host)
        seen = self.seen.get(key)
        if seen is None:
            seen = self.seen[key] = _Seen(info or (HostInfo(host) if ip else self.cls.classify(host)), example,
                                          context, ip=ip)
        elif CONTEXT_RANK[context] > CONTEXT_RANK[seen.context]:
            seen.context, seen.example = context, example
        elif in_url and "://" not in seen.example:
            seen.example = example
        if location and location not in seen.locations and len(seen.locations) <= MAX_LINES_LISTED:
            seen.locations.append(location)

    def findings(self) -> Iterator[Finding]:
        table = classifier().data
        for (file, _host), seen in sorted(self.seen.items()):
            info = seen.info
            lines = ", ".join(seen.locations[:MAX_LINES_LISTED])
            if len(seen.locations) > MAX_LINES_LISTED:
                lines += ", ..."
            location = f"line {lines}" if lines and lines[0].isdigit() else lines
            if seen.ip:
                rule, severity = "ENDPOINT-IP", table["ip_severity"][seen.context]
                described = "public IP address"
            elif info.country in self.sensitive:
                rule = f"ENDPOINT-ORIGIN-{info.kind.upper()}"
                severity = table["origin_severity"][info.kind][seen.context]
                described = _describe(info)
            else:
                rule, severity = "ENDPOINT-OTHER", table["other_severity"][seen.context]
                described = _describe(info) if info.country else "unclassified"
            yield rules.finding(rule, file=file, location=location, severity=Severity.parse(severity),
                                evidence=f"{seen.example} ({described}; in {seen.context})", scanner=self.scanner)

    def facts(self) -> dict[str, Any]:
        hosts: dict[str, dict[str, Any]] = {}
        for (file, host), seen in self.seen.items():
            entry = hosts.setdefault(host, {"country": seen.info.country, "kind": "ip" if seen.ip else seen.info.kind,
                                            "operator": seen.info.operator, "region": seen.info.region,
                                            "origin": seen.info.country in self.sensitive, "files": [],
                                            "contexts": []})
            entry["files"].append(file)
            if seen.context not in entry["contexts"]:
                entry["contexts"].append(seen.context)
        countries: dict[str, int] = {}
        for entry in hosts.values():
            key = entry["country"] or "unknown"
            countries[key] = countries.get(key, 0) + 1
        return {"hosts": hosts, "origin_hosts": sorted(h for h, e in hosts.items() if e["origin"]),
                "countries": countries, "sensitive_origins": sorted(self.sensitive)}


def _describe(info: HostInfo) -> str:
    parts = [info.operator or info.domain, info.country, info.kind]
    if info.region:
        parts.append(f"region {info.region}")
    return ", ".join(p for p in parts if p)


def _url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").strip("[]")
    except ValueError:
        return ""


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    i = bisect.bisect_right(spans, (pos, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


# --- where a match is: code, config or documentation ---------------------------------------------------


def file_context(path: str) -> str:
    p = PurePosixPath(path)
    name, suffix = p.name.lower(), p.suffix.lower()
    if suffix in _CODE_EXT or name in ("dockerfile", "makefile") or name.startswith("dockerfile"):
        return "code"
    if suffix in _DOC_EXT or name.startswith(_DOC_NAMES):
        return "docs" if suffix not in (".json", ".yaml", ".yml") else "config"
    return "config"


def python_context(text: str) -> Callable[[int, int], str]:
    """code, except in comments and docstrings (docs)."""
    doc_lines: set[int] = set()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                        isinstance(first.value.value, str):
                    doc_lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = text.splitlines()
    return _line_context(lines, doc_lines)


def shell_context(text: str) -> Callable[[int, int], str]:
    return _line_context(text.splitlines(), set())


def _line_context(lines: list[str], doc_lines: set[int]) -> Callable[[int, int], str]:
    def context_of(line: int, col: int) -> str:
        if line in doc_lines:
            return "docs"
        if 0 < line <= len(lines):
            before = lines[line - 1][:col]
            if "#" in before and before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
                return "docs"
        return "code"
    return context_of


def context_for(path: str, text: str) -> Callable[[int, int], str]:
    kind = file_context(path)
    if kind == "code":
        return python_context(text) if path.lower().endswith(".py") else shell_context(text)
    return lambda _line, _col: kind


# --- the scanner ----------------------------------------------------------------------------------------


def scan(ctx: ScanContext) -> Iterator[Finding]:
    collector = Collector(sensitive_origins(ctx))
    limit_findings: list[Finding] = []
    for rec in ctx.files:
        if rec.error or rec.format not in ("text", "script"):
            continue
        text, problem = read_bounded(ctx.path(rec), rec.size)
        if problem:
            limit_findings.append(rules.finding("ENDPOINT-LIMIT", file=rec.path, evidence=problem, scanner=NAME))
        if text:
            collector.add_text(rec.path, text, context_for(rec.path, text))
    for file, key, value in _metadata_strings(ctx.facts):
        collector.add_text(file, value, lambda _line, _col: "config", lambda _line, key=key: f"metadata {key}")
    yield from limit_findings
    yield from collector.findings()
    ctx.set_fact(NAME, collector.facts())


def read_bounded(path: Any, size: int) -> tuple[str, str]:
    """(text, problem): the file decoded as UTF-8 up to MAX_TEXT_BYTES, and why it was cut, if it was."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        return "", f"unreadable: {exc.strerror or exc}"
    problem = f"larger than {MAX_TEXT_BYTES} bytes; only the start was searched" if len(raw) > MAX_TEXT_BYTES else ""
    return raw[:MAX_TEXT_BYTES].decode("utf-8", "replace"), problem


def _metadata_strings(facts: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """String values the format scanners found in safetensors/GGUF/ONNX metadata, read defensively."""
    budget = [MAX_METADATA_STRINGS]
    for family in ("safetensors", "gguf", "onnx", "keras"):
        per_file = facts.get(family)
        if not isinstance(per_file, dict):
            continue
        for file, value in per_file.items():
            if isinstance(file, str):
                yield from _strings(file, "", value, budget, 0)


def _strings(file: str, key: str, value: Any, budget: list[int], depth: int) -> Iterable[tuple[str, str, str]]:
    if budget[0] <= 0 or depth > 12:
        return
    if isinstance(value, str):
        budget[0] -= 1
        if "." in value:
            yield file, key or "value", value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(file, f"{key}.{k}" if key else str(k), v, budget, depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value[:10_000]):
            yield from _strings(file, f"{key}[{i}]", v, budget, depth + 1)
