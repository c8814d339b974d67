"""The repo's own code: what `trust_remote_code=True` would run, what `auto_map` would fetch, and
which scripts and executables ship next to the weights.

Python (and notebook code cells) is parsed with `ast` by auditor/pyast.py, never imported. Patterns
and severities are data in rules/code-patterns.yaml.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from auditor import rules
from auditor.facts import CodeFacts
from auditor.model import FileRecord, Finding, Severity
from auditor.parsers import pyast
from auditor.scanners import ScanContext

NAME = "code"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NOTEBOOK_CELLS = 10_000
MAX_README_BYTES = 4 * 1024 * 1024
_CONFIG_NAMES = re.compile(r"(^|[_.-])(config|processor|preprocessor|feature_extractor)[^/]*\.json$", re.I)
_AUTOMAP_ENTRY = re.compile(r"^(?:(?P<repo>[\w.-]+(?:/[\w.-]+)?)--)?(?P<module>[\w.]+)\.(?P<cls>\w+)$")

_FIXED_RULES = {
    "obfuscation": "CODE-OBFUSCATED",
    "getattr": "CODE-DYNAMIC-GETATTR",
    "from-pretrained": "CODE-FROM-PRETRAINED-REPO",
    "blob": "CODE-EMBEDDED-BLOB",
}


def scan(ctx: ScanContext) -> Iterator[Finding]:
    facts: dict[str, Any] = {"python_files": [], "notebooks": [], "import_time_calls": 0, "auto_map": [],
                             "cross_repo": [], "trust_remote_code": False, "scripts": []}
    for rec in ctx.files_named(".py"):
        facts["python_files"].append(rec.path)
        yield from _scan_python(ctx, rec, facts)
    for rec in ctx.files_named(".ipynb"):
        facts["notebooks"].append(rec.path)
        yield from _scan_notebook(ctx, rec, facts)
    if facts["python_files"]:
        shown = ", ".join(facts["python_files"][:30])
        more = f" and {len(facts['python_files']) - 30} more" if len(facts["python_files"]) > 30 else ""
        yield rules.finding("CODE-PRESENT", evidence=f"{len(facts['python_files'])} Python file(s): {shown}{more}",
                            scanner=NAME)
    yield from _scan_automap(ctx, facts)
    yield from _scan_scripts(ctx, facts)
    ctx.facts.publish(CodeFacts(facts))


# --- Python -------------------------------------------------------------------------------------------


def findings_for_source(source: str, file: str, *, scanner: str = NAME, location_prefix: str = "",
                        repo_id: str = "") -> tuple[list[Finding], pyast.Analysis]:
    """CODE-* findings for one piece of Python source (also used by the deployment scanner)."""
    analysis = pyast.analyze(source)
    found: list[Finding] = []
    if analysis.error and not analysis.hits:
        found.append(rules.finding("CODE-UNPARSEABLE", file=file, evidence=analysis.error, scanner=scanner))
        return found, analysis
    if analysis.error:
        found.append(rules.finding("CODE-UNPARSEABLE", file=file, evidence=analysis.error, scanner=scanner))
    categories = pyast.patterns().categories
    called_modules: set[str] = set()
    for hit in analysis.hits:
        if hit.category == "from-pretrained" and repo_id and hit.name == repo_id:
            continue
        rule, severity = _rule_and_severity(hit, categories)
        when = "runs at import time" if hit.import_time else "runs when called"
        parts = [p for p in (hit.name, when, hit.detail) if p]
        found.append(rules.finding(rule, file=file, location=f"{location_prefix}line {hit.line}",
                                   evidence=f"{hit.call}  [{'; '.join(parts)}]", severity=severity, scanner=scanner))
        if hit.name:
            called_modules.add(hit.name)
    for module, line in analysis.imports.items():
        network = [m for m in pyast.patterns().network_imports if module == m or module.startswith(m + ".")]
        if network and not any(n == module or n.startswith(module + ".") or module.startswith(n + ".")
                               for n in called_modules):
            found.append(rules.finding("CODE-NETWORK-IMPORT", file=file, location=f"{location_prefix}line {line}",
                                       evidence=f"import {module}", scanner=scanner))
    return found, analysis


def _rule_and_severity(hit: pyast.Hit, categories: dict[str, dict[str, Any]]) -> tuple[str, Severity | None]:
    if hit.category in categories:
        spec = categories[hit.category]
        if hit.computed and "computed" in spec:
            return spec["rule"], Severity.parse(spec["computed"])
        return spec["rule"], Severity.parse(spec["import" if hit.import_time else "called"])
    rule = _FIXED_RULES[hit.category]
    if hit.category == "getattr":
        return rule, Severity.HIGH if hit.detail == "sensitive module" else Severity.LOW
    if hit.category == "from-pretrained":
        return rule, Severity.HIGH if hit.import_time else Severity.MEDIUM
    return rule, None


def _scan_python(ctx: ScanContext, rec: FileRecord, facts: dict[str, Any]) -> Iterator[Finding]:
    try:
        text, truncated = ctx.read_text(rec)
    except OSError as exc:
        yield rules.finding("CODE-UNPARSEABLE", file=rec.path, evidence=exc.strerror or str(exc), scanner=NAME)
        return
    if truncated:
        yield rules.finding("CODE-UNPARSEABLE", file=rec.path, scanner=NAME,
                            evidence=f"larger than {ctx.options.limits.max_text_bytes} bytes; not analyzed")
        return
    found, analysis = findings_for_source(text, rec.path, repo_id=ctx.snapshot.repo_id)
    facts["import_time_calls"] += sum(1 for h in analysis.hits if h.import_time)
    yield from found


def _scan_notebook(ctx: ScanContext, rec: FileRecord, facts: dict[str, Any]) -> Iterator[Finding]:
    try:
        text, truncated = ctx.read_text(rec)
        if truncated:
            raise ValueError(f"larger than {ctx.options.limits.max_text_bytes} bytes")
        cells = json.loads(text).get("cells", [])
        if not isinstance(cells, list):
            raise ValueError("'cells' is not a list")
    except (OSError, ValueError, RecursionError, AttributeError) as exc:
        yield rules.finding("CODE-UNPARSEABLE", file=rec.path, evidence=f"notebook: {exc}", scanner=NAME)
        return
    shell_lines: list[str] = []
    for index, cell in enumerate(cells[:MAX_NOTEBOOK_CELLS], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
        lines = source.splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            shell_lines.append(f"cell {index}: {lines[0].strip()}")
            continue
        kept = []
        for n, line in enumerate(lines, start=1):
            stripped = line.lstrip()
            if stripped.startswith(("!", "%")):
                shell_lines.append(f"cell {index} line {n}: {stripped[:200]}")
                kept.append("")
            else:
                kept.append(line)
        found, _analysis = findings_for_source("\n".join(kept), rec.path, location_prefix=f"cell {index} ",
                                               repo_id=ctx.snapshot.repo_id)
        yield from found
    if len(cells) > MAX_NOTEBOOK_CELLS:
        yield rules.finding("CODE-UNPARSEABLE", file=rec.path, scanner=NAME,
                            evidence=f"more than {MAX_NOTEBOOK_CELLS} cells; the rest was not analyzed")
    if shell_lines:
        yield rules.finding("SCRIPT-NOTEBOOK-SHELL", file=rec.path, location=shell_lines[0].split(":")[0],
                            evidence="; ".join(shell_lines[:20]), scanner=NAME)


# --- auto_map -------------------------------------------------------------------------------------------


def _scan_automap(ctx: ScanContext, facts: dict[str, Any]) -> Iterator[Finding]:
    present = {f.path for f in ctx.files}
    for rec in ctx.files:
        if rec.error or not _CONFIG_NAMES.search(PurePosixPath(rec.path).name):
            continue
        if rec.size > MAX_CONFIG_BYTES:
            yield rules.finding("AUTOMAP-UNPARSEABLE", file=rec.path, scanner=NAME,
                                evidence=f"config larger than {MAX_CONFIG_BYTES} bytes; auto_map not checked")
            continue
        try:
            data = json.loads(ctx.path(rec).read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            yield rules.finding("AUTOMAP-UNPARSEABLE", file=rec.path, evidence=f"{type(exc).__name__}: {exc}",
                                scanner=NAME)
            continue
        if not isinstance(data, dict):
            continue
        if "auto_map" in data:
            yield from _check_automap(rec.path, data["auto_map"], present, facts)
        pipelines = data.get("custom_pipelines")
        if isinstance(pipelines, dict):   # transformers custom pipelines: {"task": {"impl": "module.Class"}}
            impls = {f"custom_pipelines.{task}": spec.get("impl") for task, spec in pipelines.items()
                     if isinstance(spec, dict) and spec.get("impl")}
            if impls:
                yield from _check_automap(rec.path, impls, present, facts, where_prefix="")


def _automap_entries(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            items = item if isinstance(item, list) else [item]
            for entry in items:
                if entry is not None:
                    yield str(key), entry
    elif isinstance(value, list):
        for entry in value:
            if entry is not None:
                yield "", entry
    else:
        yield "", value


def _check_automap(config: str, value: Any, present: set[str], facts: dict[str, Any],
                   where_prefix: str = "auto_map.") -> Iterator[Finding]:
    folder = PurePosixPath(config).parent
    local: list[str] = []
    for key, entry in _automap_entries(value):
        where = f"{where_prefix}{key}" if key else where_prefix.rstrip(".") or "auto_map"
        match = _AUTOMAP_ENTRY.match(entry) if isinstance(entry, str) else None
        if match is None:
            yield rules.finding("AUTOMAP-UNPARSEABLE", file=config, location=where, scanner=NAME,
                                evidence=f"not a 'module.Class' reference: {entry!r}")
            continue
        facts["trust_remote_code"] = True
        record = {"config": config, "key": key, "entry": entry}
        if match.group("repo"):
            repo = match.group("repo")
            record["repo"] = repo
            facts["cross_repo"].append(record)
            facts["auto_map"].append(record)
            org = repo.split("/")[0] if "/" in repo else repo
            record["org"], record["country"] = org, _org_country(org)
            publisher = f"org {org}" + (f", {record['country']}" if record["country"] else "")
            yield rules.finding("AUTOMAP-CROSS-REPO", file=config, location=where, scanner=NAME,
                                evidence=f"{key}: {entry} (code fetched at load time from {repo}, {publisher}, "
                                         "at whatever revision that repo has then)")
            continue
        module_path = (folder / (match.group("module").replace(".", "/") + ".py")).as_posix()
        module_path = module_path[2:] if module_path.startswith("./") else module_path
        record["file"] = module_path
        facts["auto_map"].append(record)
        if module_path not in present:
            yield rules.finding("AUTOMAP-MISSING-FILE", file=config, location=where, scanner=NAME,
                                evidence=f"{key}: {entry} -> {module_path} is not in the snapshot; the loader "
                                         "would fetch it unreviewed from the repo at load time")
        else:
            local.append(f"{key}: {entry} -> {module_path}")
    if local:
        yield rules.finding("AUTOMAP-REMOTE-CODE", file=config, location=where_prefix.rstrip(".") or "custom_pipelines",
                            scanner=NAME, evidence="; ".join(local))


def _org_country(org: str) -> str:
    """The publisher country of a Hub org from rules/origins.yaml (the provenance data), "" when unknown."""
    try:
        orgs = rules.load("origins.yaml").get("orgs") or {}
    except Exception:  # noqa: BLE001 - the registry is another family's data; its absence is not our failure
        return ""
    lowered = {str(k).lower(): v for k, v in orgs.items()}
    entry = lowered.get(org.lower())
    return str(entry.get("country") or "") if isinstance(entry, dict) else ""


# --- scripts and executables -----------------------------------------------------------------------------


def _scan_scripts(ctx: ScanContext, facts: dict[str, Any]) -> Iterator[Finding]:
    data = rules.load("code-patterns.yaml")
    script_ext = tuple(data["script_extensions"])
    setup = set(data["setup_files"])
    binaries = set(data["binary_formats"])
    compiled = tuple(data.get("compiled_suffixes", ()))
    for rec in ctx.files:
        name = PurePosixPath(rec.path).name
        lower = name.lower()
        if rec.format in binaries:
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-BINARY", file=rec.path, evidence=f"{rec.format} executable, {rec.size} bytes",
                                scanner=NAME)
        elif lower.endswith(compiled):
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-BINARY", file=rec.path, scanner=NAME,
                                evidence=f"compiled or packaged Python ({PurePosixPath(lower).suffix}), {rec.size} bytes")
        elif name in setup:
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-SETUP", file=rec.path, evidence=name, scanner=NAME)
        elif lower.endswith(script_ext) or (rec.format == "script" and not lower.endswith(".py")):
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-SHELL", file=rec.path, evidence=_first_line(ctx, rec), scanner=NAME)
        elif lower.endswith(".ipynb"):
            yield rules.finding("SCRIPT-NOTEBOOK", file=rec.path, evidence=f"notebook, {rec.size} bytes",
                                scanner=NAME)
        elif lower.endswith((".md", ".rst", ".txt")) and lower.startswith("readme") and not rec.error:
            yield from _readme_instructions(ctx, rec, data)


def _first_line(ctx: ScanContext, rec: FileRecord) -> str:
    try:
        with open(ctx.path(rec), "rb") as fh:
            head = fh.read(200).decode("utf-8", "replace")
    except OSError as exc:
        return exc.strerror or str(exc)
    return head.splitlines()[0] if head.strip() else "(empty)"


def _readme_instructions(ctx: ScanContext, rec: FileRecord, data: dict[str, Any]) -> Iterator[Finding]:
    try:
        with open(ctx.path(rec), "rb") as fh:
            text = fh.read(MAX_README_BYTES).decode("utf-8", "replace")
    except OSError:
        return
    run = [re.compile(p, re.I) for p in data["readme_run_patterns"]]
    pipe = re.compile(data["readme_pipe_to_shell"], re.I)
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > 2000:
            line = line[:2000]
        for pattern in run:
            match = pattern.search(line)
            if match:
                severity = Severity.MEDIUM if pipe.search(line) else None
                yield rules.finding("SCRIPT-README-RUN", file=rec.path, location=f"line {number}",
                                    evidence=line.strip()[:300], severity=severity, scanner=NAME)
                break
