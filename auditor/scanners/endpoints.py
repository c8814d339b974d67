"""Every URL, hostname and IP literal in every text file, classified by operator country and kind.

Hosts are classified with rules/endpoints.yaml. Origin-country infrastructure (countries in the
policy's `sensitive_origins`) is ENDPOINT-ORIGIN-<KIND>; the rest is ENDPOINT-OTHER. Severity depends
on where the endpoint appears: code that runs > configs > documentation (comments and docstrings
count as documentation). Bare hostnames (not in a URL) are only reported when they are classified,
so file names like `modeling.py` never become endpoints. One finding per host per file, listing lines.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from auditor import rules
from auditor.facts import CodeFacts, EndpointFacts, Facts, GgufFacts, KerasFacts, OnnxFacts, SafetensorsFacts
from auditor.model import FileRecord, Finding, Severity
from auditor.parsers import licensetext, loadgraph, relpath
from auditor.parsers.hosts import HostInfo, classifier
from auditor.record import field, record
from auditor.scanners import ScanContext

NAME = "endpoints"
MAX_TEXT_BYTES = 128 * 1024 * 1024     # files are searched up to this; beyond it: ENDPOINT-LIMIT
CHUNK_BYTES = 8 * 1024 * 1024          # larger files are searched in chunks cut at line ends (bounded memory)
MAX_PARSED_PYTHON = 8 * 1024 * 1024    # Python up to this is parsed for docstrings; larger: comments only
PROSE_MIN_SPACES = 8                   # a string constant with this many spaces is text (a prompt), not an address
MAX_LINES_LISTED = 20
MAX_METADATA_STRINGS = 200_000
MAX_TOKENS_PER_FILE = 2_000_000       # dotted strings examined per file (a 30 MB tokenizer has ~10^4)
MAX_SIGHTINGS_PER_FILE = 100_000
MAX_HOSTS_PER_FILE = 2_000            # distinct hosts reported per file
CONTEXT_RANK = {"docs": 0, "example": 1, "config": 2, "code": 3}

# Literal anchors the regex engine finds fast, then bounded, linear expansions around them.
_SCHEME_SEP = re.compile(rb"://")
_DOT = re.compile(rb"\.")
_HOST_CHARS = re.compile(rb"[A-Za-z0-9.-]*")
_URL_REST = re.compile(rb"""[^\s"'<>`(){}\[\]\\|^]{1,2048}""")
_IPV4_TOKEN = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$")
_SCHEMES = {"http", "https", "ftp", "ftps", "ws", "wss", "s3", "gs", "oss", "hdfs", "sftp"}
_DOC_NAMES = ("readme", "license", "licence", "notice", "copying", "citation", "changelog", "authors", "model_card")
_DOC_EXT = {".md", ".rst", ".txt", ".html", ".htm", ".adoc", ".org", ".tex", ".bib", ".cff"}
_CODE_EXT = {".py", ".sh", ".bash", ".zsh", ".ps1", ".bat", ".cmd", ".js", ".ts", ".rb", ".pl", ".lua", ".go", ".rs",
             ".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".java"}


@record
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
        self.problems: dict[str, str] = {}                  # file -> why it was not fully searched
        self.hosts_per_file: dict[str, int] = {}
        self.cls = classifier()

    def add_text(self, file: str, text: str | bytes, context_of: Callable[[int, int], str],
                 location_of: Callable[[int], str] | None = None, *, bare_hosts: bool = True,
                 line_base: int = 0) -> None:
        """Search `text`; context_of(line, column) says code/config/docs for a match at that place.

        Works on bytes and anchors on literals ("://" and "."), which the regex engine finds at memory
        speed, so a 30 MB tokenizer.json costs a fraction of a second, not a regex pass per character.
        """
        raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
        sightings = self._url_sightings(file, raw)
        if bare_hosts:
            self._bare_sightings(file, raw, sightings)
        if sightings:
            self._emit(file, raw, sightings, context_of, location_of or str, line_base)

    def _url_sightings(self, file: str, raw: bytes) -> list[tuple[int, str, str, bool]]:
        sightings: list[tuple[int, str, str, bool]] = []     # (offset, host, example, in_url)
        hosts: dict[str, str] = {}                            # url -> host, parsed once
        for m in _SCHEME_SEP.finditer(raw):
            if len(sightings) >= MAX_SIGHTINGS_PER_FILE:
                self.problems.setdefault(file, f"more than {MAX_SIGHTINGS_PER_FILE} URLs; the rest was not searched")
                break
            pos = m.start()
            scheme = _HOST_CHARS.match(raw[max(0, pos - 10):pos][::-1])
            start = pos - len(scheme.group(0)) if scheme else pos
            if raw[start:pos].decode("ascii", "replace").lower() not in _SCHEMES:
                continue
            rest = _URL_REST.match(raw, pos + 3)
            if rest is None:
                continue
            url = raw[start:rest.end()].decode("utf-8", "replace").rstrip(".,;:!?*'\"")
            host = hosts.get(url)
            if host is None:
                host = hosts[url] = _url_host(url)
            if host:
                sightings.append((start, host, url, True))
        return sightings

    def _bare_sightings(self, file: str, raw: bytes, sightings: list[tuple[int, str, str, bool]]) -> None:
        previous_end = 0
        tokens = 0
        dot_match = _DOT.search(raw)
        while dot_match is not None:
            dot = dot_match.start()
            tokens += 1
            if tokens > MAX_TOKENS_PER_FILE or len(sightings) > MAX_SIGHTINGS_PER_FILE:
                self.problems.setdefault(file, f"more than {MAX_TOKENS_PER_FILE} host-like strings or "
                                               f"{MAX_SIGHTINGS_PER_FILE} endpoints; the rest was not searched")
                break
            back = _HOST_CHARS.match(raw[max(previous_end, dot - 253):dot][::-1])
            ahead = _HOST_CHARS.match(raw, dot, min(len(raw), dot + 254))
            begin = dot - (len(back.group(0)) if back else 0)
            previous_end = ahead.end() if ahead else dot + 1
            dot_match = _DOT.search(raw, previous_end)
            token = raw[begin:previous_end].strip(b".-").decode("ascii", "replace").lower()
            if "." not in token:
                continue
            if _IPV4_TOKEN.match(token):
                sightings.append((begin, token, token, False))
            elif token[-1].isalpha() and self.cls.classify(token).country:
                sightings.append((begin, token, token, False))

    def _emit(self, file: str, raw: bytes, sightings: list[tuple[int, str, str, bool]],
              context_of: Callable[[int, int], str], location_of: Callable[[int], str], line_base: int) -> None:
        sightings.sort()
        line, line_start, counted_to = 1, 0, 0
        for offset, host, example, in_url in sightings:
            newlines = raw.count(b"\n", counted_to, offset)
            if newlines:
                line += newlines
                line_start = raw.rfind(b"\n", counted_to, offset) + 1
            counted_to = offset
            # the column only matters for comments in code; on a huge line, bytes are close enough
            column = offset - line_start
            if column < 4096:
                column = len(raw[line_start:offset].decode("utf-8", "replace"))
            context = context_of(line, column)
            is_ip = bool(_IPV4_TOKEN.match(host))
            if is_ip and context == "docs":
                continue   # version numbers and citations look like IPs; only code and configs count
            self._add(file, host, example, context, location_of(line + line_base), in_url=in_url, ip=is_ip)

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
            count = self.hosts_per_file.get(file, 0)
            if count >= MAX_HOSTS_PER_FILE:
                self.problems.setdefault(file, f"more than {MAX_HOSTS_PER_FILE} distinct hosts; the rest not listed")
                return
            self.hosts_per_file[file] = count + 1
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
        for file, problem in self.problems.items():
            yield rules.finding("ENDPOINT-LIMIT", file=file, evidence=problem, scanner=self.scanner)
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


# --- where a match is: code, config or documentation ---------------------------------------------------


def file_context(path: str) -> str:
    name, suffix = relpath.name(path).lower(), relpath.suffix(path).lower()
    if suffix in _CODE_EXT or name in ("dockerfile", "makefile") or name.startswith("dockerfile"):
        return "code"
    if name.startswith(("requirements", "constraints", ".env")):
        return "config"      # package indexes and environment: what an install or a run will contact
    if suffix in _DOC_EXT or name.startswith(_DOC_NAMES):
        return "docs" if suffix not in (".json", ".yaml", ".yml") else "config"
    if licensetext.file_role(path):      # MODEL_LICENSE, Qwen_LICENSE: a license's URLs are not contacted
        return "docs"
    return "config"


def python_context(text: str) -> Callable[[int, int], str]:
    """code, except in comments and docstrings (docs)."""
    import ast  # here, not at the top: its import is ~3% of a scan that has no Python file
    doc_lines: set[int] = set()
    tree = None
    if len(text) <= MAX_PARSED_PYTHON:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                doc_lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.count(" ") >= PROSE_MIN_SPACES:   # prompt text, banners: URLs in prose are not contacted
            doc_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines = text.splitlines()
    return _line_context(lines, doc_lines)


def shell_context(text: str) -> Callable[[int, int], str]:
    return _line_context(text.splitlines(), set())


def _line_context(lines: list[str], doc_lines: set[int], kind: str = "code") -> Callable[[int, int], str]:
    def context_of(line: int, col: int) -> str:
        if line in doc_lines:
            return "docs"
        if 0 < line <= len(lines):
            before = lines[line - 1][:col]
            if "#" in before and before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
                return "docs"
        return kind
    return context_of


def _hash_comments(path: str) -> bool:
    low = path.lower()
    return relpath.suffix(low) in (".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".txt") or \
        relpath.name(low).startswith((".env", "requirements", "constraints"))


def is_vocabulary(path: str) -> bool:
    """Tokenizer vocabularies: bare host-like tokens in them are not endpoints."""
    data = classifier().data
    name = relpath.name(path).lower()
    return name in data.get("vocabulary_files", ()) or name.endswith(tuple(data.get("vocabulary_suffixes", ())))


def context_for(path: str, content: str | bytes) -> Callable[[int, int], str]:
    """How to tell code, config and docs apart in this file (decodes only code files, which are small)."""
    kind = file_context(path)
    script = content[:2] in ("#!", b"#!") and not path.lower().endswith(".py")
    if kind != "code" and not script:
        if _hash_comments(path):     # compose, .env, TOML, INI: a commented-out line configures nothing
            text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            return _line_context(text.splitlines(), set(), kind)
        return lambda _line, _col: kind
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if path.lower().endswith(".py"):
        return python_context(text)
    return shell_context(text)         # shell, Dockerfile, or an extension-less script


# --- the scanner ----------------------------------------------------------------------------------------


def scan(ctx: ScanContext) -> Iterator[Finding]:
    collector = Collector(set(ctx.regions.sensitive_origins))
    code = ctx.facts.get(CodeFacts)
    roles: dict[str, str] = (code.get("roles") if code else None) or {}
    texts = [r for r in ctx.files if not r.error and r.format in ("text", "script")]
    yield from ctx.per_file(texts, lambda rec: _scan_file(ctx, rec, collector, roles), NAME)
    for file, key, value in _metadata_strings(ctx.facts):
        collector.add_text(file, value, _in_config, functools.partial(_metadata_location, key))
    yield from collector.findings()
    ctx.facts.publish(EndpointFacts(collector.facts()))


def _scan_file(ctx: ScanContext, rec: FileRecord, collector: Collector, roles: dict[str, str]) -> Iterator[Finding]:
    """One file, read in chunks of CHUNK_BYTES cut at line ends: memory stays bounded whatever its size."""
    role = roles.get(rec.path) or loadgraph.path_role(rec.path)
    bare = not is_vocabulary(rec.path)
    line_base = 0
    head = ctx.read_bytes(rec, CHUNK_BYTES + 1)
    if len(head) <= CHUNK_BYTES:
        collector.add_text(rec.path, head, _by_role(role, context_for(rec.path, head)), bare_hosts=bare)
        return
    with open(ctx.fspath(rec), "rb") as fh:
        fh.seek(len(head))
        read, carry = 0, head
        while carry:
            cut = carry.rfind(b"\n", 0, CHUNK_BYTES) + 1 or min(len(carry), CHUNK_BYTES)
            chunk, carry = carry[:cut], carry[cut:]
            read += len(chunk)
            context = _by_role(role, _chunk_context(rec.path, chunk))
            collector.add_text(rec.path, chunk, context, bare_hosts=bare, line_base=line_base)
            line_base += chunk.count(b"\n")
            if read >= MAX_TEXT_BYTES:
                yield rules.finding("ENDPOINT-LIMIT", file=rec.path, scanner=NAME, severity=Severity.HIGH
                                    if file_context(rec.path) == "code" else None,
                                    evidence=f"larger than {MAX_TEXT_BYTES} bytes; only the start was searched")
                return
            if len(carry) < CHUNK_BYTES:
                carry += fh.read(CHUNK_BYTES)


def _chunk_context(path: str, chunk: bytes) -> Callable[[int, int], str]:
    kind = file_context(path)
    if kind != "code" and not _hash_comments(path):
        return lambda _line, _col: kind
    return _line_context(chunk.decode("utf-8", "replace").splitlines(), set(), kind)   # comments only


def _by_role(role: str, context_of: Callable[[int, int], str]) -> Callable[[int, int], str]:
    """CI workflows, data and docs are documentation; code in examples is example code."""
    if role in (loadgraph.CI, loadgraph.DATA, loadgraph.DOCS):
        return lambda _line, _col: "docs"
    if role == loadgraph.EXAMPLE:
        def example(line: int, col: int) -> str:
            context = context_of(line, col)
            return "example" if context in ("code", "config") else context
        return example
    return context_of


def _in_config(_line: int, _col: int) -> str:
    return "config"


def _metadata_location(key: str, _line: int) -> str:
    return f"metadata {key}"


def read_bounded(path: Any, size: int) -> tuple[bytes, str]:
    """(content, problem): the file up to MAX_TEXT_BYTES, and why it was cut, if it was."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        return b"", f"unreadable: {exc.strerror or exc}"
    problem = f"larger than {MAX_TEXT_BYTES} bytes; only the start was searched" if len(raw) > MAX_TEXT_BYTES else ""
    return raw[:MAX_TEXT_BYTES], problem


def _metadata_strings(facts: Facts) -> Iterator[tuple[str, str, str]]:
    """String values the format scanners found in safetensors/GGUF/ONNX/Keras metadata, read defensively."""
    budget = [MAX_METADATA_STRINGS]
    for kind in (SafetensorsFacts, GgufFacts, OnnxFacts, KerasFacts):
        record = facts.get(kind)
        for file, value in (record.files if record else {}).items():
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
