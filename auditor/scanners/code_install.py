"""What installing the repo's requirements would fetch and run, and logging configs that ship records.

requirements*.txt / constraints / environment.yml pip lines, setup.py (read with ast, never run),
pyproject.toml (tomllib) and .pth files: package indexes other than PyPI (--index-url,
--extra-index-url, --find-links, [[tool.uv.index]], poetry sources), direct URLs (git+https, name @
https://...), names one edit away from a popular package (rules/popular-packages.yaml), and .pth
lines that Python's site module executes at every interpreter start. Logging dictConfig/fileConfig
files naming a handler that sends records over the network (SocketHandler, HTTPHandler...).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from auditor import rules
from auditor.model import FileRecord, Finding
from auditor.parsers import loadgraph, relpath
from auditor.scanners import ScanContext

MAX_FILE_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_INDEX_OPTIONS = ("--index-url", "--extra-index-url", "-i", "--find-links", "-f", "--trusted-host")
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".ini", ".conf", ".cfg", ".toml")


@functools.cache
def _popular() -> frozenset[str]:
    return frozenset(_normalize(n) for n in rules.load("popular-packages.yaml")["packages"])


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def scan(ctx: ScanContext, graph: loadgraph.LoadGraph, scanner: str) -> Iterator[Finding]:
    wanted = [r for r in ctx.files if not r.error and r.size <= MAX_FILE_BYTES and _kind(r.path)]
    yield from ctx.per_file(wanted, lambda rec: _scan_one(ctx, rec, scanner), scanner)


def _kind(path: str) -> str:
    name = relpath.name(path).lower()
    if name.endswith(".txt") and name.startswith(("requirements", "constraints", "requires")):
        return "requirements"
    if name in ("environment.yml", "environment.yaml"):
        return "requirements"
    if name == "setup.py":
        return "setup"
    if name == "pyproject.toml":
        return "pyproject"
    if name.endswith(".pth"):
        return "pth"
    if name.endswith(_CONFIG_SUFFIXES) and "log" in name:
        return "logging"
    return ""


def _scan_one(ctx: ScanContext, rec: FileRecord, scanner: str) -> Iterator[Finding]:
    text = ctx.read_bytes(rec).decode("utf-8", "replace")
    kind = _kind(rec.path)
    if kind == "requirements":
        for number, line in _logical_lines(text):
            yield from _requirement(rec.path, f"line {number}", re.sub(r"^-\s+", "", line).strip(), scanner)
    elif kind == "setup":
        for where, spec in _setup_requirements(text):
            yield from _requirement(rec.path, where, spec, scanner)
    elif kind == "pyproject":
        yield from _pyproject(rec.path, text, scanner)
    elif kind == "pth":
        yield from _pth(rec.path, text, scanner)
    else:
        handlers = rules.load("code-patterns.yaml")["network_handler_strings"]
        hit = next((h for h in handlers if h in text), None)
        if hit and "handlers" in text:
            number = text.count("\n", 0, text.index(hit)) + 1
            yield rules.finding("CODE-LOGGING-NETWORK", file=rec.path, location=f"line {number}", scanner=scanner,
                                evidence=f"logging configuration uses {hit}: log records are sent over the network")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            yield start, line


def _requirement(file: str, where: str, line: str, scanner: str) -> Iterator[Finding]:
    """One requirement line or dependency string."""
    if line.startswith("-"):
        option, _, value = line.replace("=", " ", 1).partition(" ")
        if option in _INDEX_OPTIONS:
            yield rules.finding("INSTALL-INDEX-URL", file=file, location=where, scanner=scanner,
                                evidence=f"{option} {value.strip()[:300]}: packages come from this index, "
                                         "not only from PyPI")
        elif option in ("-e", "--editable") and "://" in value:
            yield rules.finding("INSTALL-DIRECT-URL", file=file, location=where, scanner=scanner,
                                evidence=line[:300])
        return
    if "://" in line or line.startswith(("git+", "hg+", "svn+", "bzr+")):
        yield rules.finding("INSTALL-DIRECT-URL", file=file, location=where, scanner=scanner, evidence=line[:300])
        if "@" not in line.split("://")[0]:
            return
    match = _NAME.match(line)
    if match:
        yield from _typosquat(file, where, match.group(1), scanner)


def _typosquat(file: str, where: str, name: str, scanner: str) -> Iterator[Finding]:
    normalized = _normalize(name)
    popular = _popular()
    if normalized in popular or len(normalized) < 4:
        return
    near = next((p for p in sorted(popular) if abs(len(p) - len(normalized)) <= 1 and len(p) >= 4
                 and _one_edit(normalized, p)), None)
    if near:
        yield rules.finding("INSTALL-TYPOSQUAT", file=file, location=where, scanner=scanner,
                            evidence=f"{name!r} is one edit away from the popular package {near!r}")


def _one_edit(a: str, b: str) -> bool:
    """a and b differ by one insertion, deletion, substitution or swap of adjacent characters."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1:]


def _setup_requirements(text: str) -> Iterator[tuple[str, str]]:
    import ast  # here, not at the top: its import is ~3% of a scan that has no setup.py
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg not in ("install_requires", "setup_requires", "dependency_links", "extras_require",
                              "tests_require"):
                continue
            try:
                value = ast.literal_eval(kw.value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            for spec in _flatten(value):
                yield f"line {kw.value.lineno} {kw.arg}", spec


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value[:10_000]:
            yield from _flatten(item)


def _pyproject(file: str, text: str, scanner: str) -> Iterator[Finding]:
    import tomllib  # only for a shipped pyproject.toml

    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        yield rules.finding("CODE-UNPARSEABLE", file=file, scanner=scanner, evidence=f"pyproject.toml: {exc}")
        return
    project: dict[str, Any] = data["project"] if isinstance(data.get("project"), dict) else {}
    specs: list[tuple[str, Any]] = [("project.dependencies", project.get("dependencies")),
                                    ("project.optional-dependencies", project.get("optional-dependencies")),
                                    ("build-system.requires", (data.get("build-system") or {}).get("requires"))]
    for where, value in specs:
        for spec in _flatten(value or []):
            yield from _requirement(file, where, spec, scanner)
    tool: dict[str, Any] = data["tool"] if isinstance(data.get("tool"), dict) else {}
    for where, url in _index_urls(tool):
        yield rules.finding("INSTALL-INDEX-URL", file=file, location=where, scanner=scanner,
                            evidence=f"{url[:300]}: packages come from this index, not only from PyPI")
    poetry = (tool.get("poetry") or {}).get("dependencies") if isinstance(tool.get("poetry"), dict) else None
    for name, value in (poetry or {}).items() if isinstance(poetry, dict) else ():
        if isinstance(value, dict) and (value.get("git") or value.get("url")):
            yield rules.finding("INSTALL-DIRECT-URL", file=file, location="tool.poetry.dependencies", scanner=scanner,
                                evidence=f"{name} = {value.get('git') or value.get('url')}"[:300])
        elif name.lower() != "python":
            yield from _typosquat(file, "tool.poetry.dependencies", str(name), scanner)


def _index_urls(tool: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for section in ("poetry", "pdm", "uv", "rye", "hatch"):
        value = tool.get(section)
        if not isinstance(value, dict):
            continue
        for key in ("index-url", "extra-index-url", "find-links"):
            for url in _flatten(value.get(key) or []):
                yield f"tool.{section}.{key}", url
        for key in ("source", "index", "sources"):
            for item in value.get(key) or [] if isinstance(value.get(key), list) else []:
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    yield f"tool.{section}.{key}", item["url"]


def _pth(file: str, text: str, scanner: str) -> Iterator[Finding]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(("import ", "import\t")):
            yield rules.finding("INSTALL-PTH-EXEC", file=file, location=f"line {number}", scanner=scanner,
                                evidence=f"{line.strip()[:300]} (site runs this line at every interpreter start)")
