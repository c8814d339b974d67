"""The repo's own code: what `trust_remote_code=True` would run, what `auto_map` would fetch, and
which scripts and executables ship next to the weights.

Python (and notebook code cells) is parsed with `ast` by auditor/parsers/pyast.py, never imported.
Every file is placed on the load graph (auditor/parsers/loadgraph.py): severity follows it (code run
on load keeps the rule's import-time severity; examples, notebooks, CI, data and docs are capped),
and every finding says which path it is on. Patterns and severities are data in rules/code-patterns.yaml.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from auditor import rules
from auditor.facts import CodeFacts
from auditor.model import FileRecord, Finding, Severity
from auditor.parsers import loadgraph
from auditor.record import field, record
from auditor.scanners import ScanContext, code_install, code_scripts

if TYPE_CHECKING:   # imported where Python is analysed: a repo without code does not pay for ast and the walkers
    from auditor.parsers import pyast

NAME = "code"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NOTEBOOK_CELLS = 10_000
MAX_GRAPH_ROUNDS = 4
_CONFIG_NAMES = re.compile(r"(^|[_.-])(config|processor|preprocessor|feature_extractor)[^/]*\.json$", re.I)
_NEVER_LOADED = (loadgraph.EXAMPLE, loadgraph.CI, loadgraph.DATA, loadgraph.DOCS)
_HIDING = {"obfuscation", "blob", "encoding", "bidi"}


@record
class _Source:
    analysis: pyast.Analysis
    analyzed: bool = False       # the text itself is not kept: only what the analysis found
    problems: list[Finding] = field(default_factory=list)


def scan(ctx: ScanContext) -> Iterator[Finding]:
    facts: dict[str, Any] = {"python_files": [], "notebooks": [], "import_time_calls": 0, "auto_map": [],
                             "cross_repo": [], "trust_remote_code": False, "scripts": []}
    found_entries: list[loadgraph.Entry] = []
    configs = [r for r in ctx.files if not r.error and _CONFIG_NAMES.search(r.path.rsplit("/", 1)[-1])]
    yield from ctx.per_file(configs, lambda rec: _read_config(ctx, rec, found_entries), NAME)
    yield from _automap_findings(ctx, found_entries, facts)
    sources: dict[str, _Source] = {}
    python = ctx.files_named(".py")
    yield from ctx.per_file(python, lambda rec: _analyze_file(ctx, rec, sources), NAME)
    graph = _graph(ctx, found_entries, sources)
    for _ in range(MAX_GRAPH_ROUNDS):     # non-.py files loaded by path are code: analyze, then follow them
        extra = [r for r in ctx.files if r.path in graph.loaded_as_code and r.path not in sources and not r.error]
        if not extra:
            break
        yield from ctx.per_file(extra, lambda rec: _analyze_file(ctx, rec, sources), NAME)
        graph = _graph(ctx, found_entries, sources)
    by_path = {r.path: r for r in ctx.files}
    yield from ctx.per_file(sorted(sources), lambda path: _report_file(ctx, path, sources[path], graph, facts),
                            NAME, name=str)
    facts["python_files"] = sorted(p for p in sources if p.lower().endswith(".py"))
    facts["loaded_as_code"] = sorted(graph.loaded_as_code)
    notebooks = ctx.files_named(".ipynb")
    facts["notebooks"] = [r.path for r in notebooks]
    yield from ctx.per_file(notebooks, lambda rec: _scan_notebook(ctx, rec), NAME)
    if facts["python_files"]:
        shown = ", ".join(facts["python_files"][:30])
        more = f" and {len(facts['python_files']) - 30} more" if len(facts["python_files"]) > 30 else ""
        yield rules.finding("CODE-PRESENT", evidence=f"{len(facts['python_files'])} Python file(s): {shown}{more}",
                            scanner=NAME)
    yield from code_scripts.scan_scripts(ctx, facts, NAME)
    yield from code_install.scan(ctx, graph, NAME)
    facts["load_graph"] = {path: graph.why(path) for path in sorted(graph.chains)}
    facts["roles"] = {path: graph.role(path) for path in sorted(by_path)}
    ctx.facts.publish(CodeFacts(facts))


def _graph(ctx: ScanContext, found: list[loadgraph.Entry], sources: dict[str, _Source]) -> loadgraph.LoadGraph:
    modules = {p: s.analysis.modules for p, s in sources.items()}
    loads = {p: [names for _line, names, _when in s.analysis.loads] for p, s in sources.items()}
    return loadgraph.LoadGraph((r.path for r in ctx.files), found, modules, loads)


# --- Python -------------------------------------------------------------------------------------------


def _analyze_file(ctx: ScanContext, rec: FileRecord, sources: dict[str, _Source]) -> Iterator[Finding]:
    from auditor.parsers import pyast

    source = sources[rec.path] = _Source(pyast.Analysis())
    limit = ctx.options.limits.max_text_bytes
    raw = ctx.read_bytes(rec, limit + 1)
    if len(raw) > limit:
        source.problems.append(rules.finding("CODE-LIMIT", file=rec.path, scanner=NAME,
                                             evidence=f"larger than {limit} bytes; not analyzed"))
        return iter(())
    decoded = pyast.decode_source(raw)
    if decoded.exotic:
        plain = raw.decode("utf-8", "replace")
        hidden = plain != decoded.text
        source.problems.append(rules.finding(
            "CODE-ENCODING", file=rec.path, scanner=NAME, severity=None if hidden else Severity.MEDIUM,
            evidence=f"source encoding {decoded.encoding}" + (
                ": Python reads different code than an editor shows" if hidden else "")))
    source.analyzed = True
    source.analysis = pyast.analyze(decoded.text)
    if decoded.error:
        source.analysis.error = source.analysis.error or decoded.error
    return iter(())


def findings_for_source(source: str, file: str, *, scanner: str = NAME, location_prefix: str = "",
                        repo_id: str = "", role: str = loadgraph.SHIPPED, why: str = "",
                        analysis: pyast.Analysis | None = None) -> tuple[list[Finding], pyast.Analysis]:
    """CODE-* findings for one piece of Python source (also used by the deployment scanner)."""
    from auditor.parsers import pyast

    analysis = analysis if analysis is not None else pyast.analyze(source)
    found: list[Finding] = []
    if analysis.limit:
        found.append(rules.finding("CODE-LIMIT", file=file, evidence=analysis.limit, scanner=scanner,
                                   severity=_graded(Severity.HIGH, role, "limit")))
    if analysis.error and analysis.error != analysis.limit:
        found.append(rules.finding("CODE-UNPARSEABLE", file=file, location=location_prefix.strip(),
                                   evidence=analysis.error, scanner=scanner))
    if analysis.bidi_lines:
        found.append(rules.finding("CODE-TROJAN-SOURCE", file=file, scanner=scanner,
                                   location=f"{location_prefix}line {', '.join(map(str, analysis.bidi_lines[:20]))}",
                                   severity=_graded(Severity.HIGH, role, "bidi"),
                                   evidence="bidirectional control characters: the code runs in another order "
                                            "than it reads"))
    called_modules: set[str] = set()
    found += _hit_findings(analysis, file, scanner, location_prefix, repo_id, role, why, called_modules)
    suffix = f"; {why}" if why else ""
    for module, line in analysis.imports.items():
        network = pyast.patterns().is_network_module(module)
        if network and not any(n == module or n.startswith(module + ".") or module.startswith(n + ".")
                               for n in called_modules):
            found.append(rules.finding("CODE-NETWORK-IMPORT", file=file, location=f"{location_prefix}line {line}",
                                       evidence=f"import {module}{suffix}", scanner=scanner,
                                       severity=_graded(rules.catalog()["CODE-NETWORK-IMPORT"].severity, role, "")))
    return found, analysis


def _hit_findings(analysis: pyast.Analysis, file: str, scanner: str, location_prefix: str, repo_id: str,
                  role: str, why: str, called_modules: set[str]) -> list[Finding]:
    from auditor.parsers import pyast

    categories = pyast.patterns().categories
    found: list[Finding] = []
    seen: set[tuple[str, int]] = set()
    suffix = f"; {why}" if why else ""
    for hit in analysis.hits:
        if hit.category == "from-pretrained" and repo_id and hit.name == repo_id:
            continue
        rule, base = _rule_and_severity(hit, categories)
        if (rule, hit.line) in seen:
            continue
        seen.add((rule, hit.line))
        parts = [p for p in (hit.name, _when(hit, role), hit.detail) if p]
        found.append(rules.finding(rule, file=file, location=f"{location_prefix}line {hit.line}",
                                   evidence=f"{hit.call}  [{'; '.join(parts)}{suffix}]",
                                   severity=_graded(base, role, hit.category), scanner=scanner))
        if hit.name:
            called_modules.add(hit.name)
    return found


def _when(hit: pyast.Hit, role: str) -> str:
    if role == loadgraph.EXAMPLE:
        return "runs when the script or notebook is run"
    if role in _NEVER_LOADED:
        return "never run by loading the model"
    return f"runs {hit.trigger}" if hit.import_time else "runs when called"


def _graded(severity: Severity, role: str, category: str) -> Severity:
    """Code that loading never runs is capped: low, medium for code that hides what it does."""
    if role in _NEVER_LOADED:
        return min(severity, Severity.MEDIUM if category in _HIDING else Severity.LOW)
    return severity


def _rule_and_severity(hit: pyast.Hit, categories: dict[str, dict[str, Any]]) -> tuple[str, Severity]:
    """Rule and severity of a hit from rules/code-patterns.yaml: `computed` when what runs is not known
    (or, for getattr, a computed name on a sensitive module; for from-pretrained, trust_remote_code)."""
    spec = categories[hit.category]
    computed = hit.computed
    if hit.category == "getattr":
        computed = hit.detail == "sensitive module"
    elif hit.category == "from-pretrained":
        computed = "trust_remote_code" in hit.detail
    if computed and "computed" in spec:
        return spec["rule"], Severity.parse(spec["computed"])
    return spec["rule"], Severity.parse(spec["import" if hit.import_time else "called"])


def _report_file(ctx: ScanContext, path: str, source: _Source, graph: loadgraph.LoadGraph,
                 facts: dict[str, Any]) -> Iterator[Finding]:
    role = graph.role(path)
    yield from source.problems
    if not source.analyzed:
        return
    found, analysis = findings_for_source("", path, repo_id=ctx.snapshot.repo_id, role=role,
                                          why=graph.why(path), analysis=source.analysis)
    if role not in _NEVER_LOADED:
        facts["import_time_calls"] += sum(1 for h in analysis.hits if h.import_time)
    yield from found


def _scan_notebook(ctx: ScanContext, rec: FileRecord) -> Iterator[Finding]:
    text, truncated = ctx.read_text(rec)
    if truncated:
        yield rules.finding("CODE-LIMIT", file=rec.path, severity=Severity.MEDIUM, scanner=NAME,
                            evidence=f"notebook larger than {ctx.options.limits.max_text_bytes} bytes; not analyzed")
        return
    try:
        cells = json.loads(text).get("cells", [])
        if not isinstance(cells, list):
            raise ValueError("'cells' is not a list")
    except (ValueError, RecursionError, AttributeError) as exc:
        yield rules.finding("CODE-UNPARSEABLE", file=rec.path, evidence=f"notebook: {exc}", scanner=NAME)
        return
    shell_lines: list[str] = []
    for index, cell in enumerate(cells[:MAX_NOTEBOOK_CELLS], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
        kept = _cell_python(source, index, shell_lines)
        found, _analysis = findings_for_source(kept, rec.path, location_prefix=f"cell {index} ",
                                               repo_id=ctx.snapshot.repo_id, role=loadgraph.EXAMPLE,
                                               why="a notebook: runs only when someone runs its cells")
        yield from found
    if len(cells) > MAX_NOTEBOOK_CELLS:
        yield rules.finding("CODE-LIMIT", file=rec.path, scanner=NAME, severity=Severity.MEDIUM,
                            evidence=f"more than {MAX_NOTEBOOK_CELLS} cells; the rest was not analyzed")
    if shell_lines:
        yield rules.finding("SCRIPT-NOTEBOOK-SHELL", file=rec.path, location=shell_lines[0].split(":")[0],
                            evidence="; ".join(shell_lines[:20]), scanner=NAME)


def _cell_python(source: str, index: int, shell_lines: list[str]) -> str:
    lines = _ipython_cleanup(source.splitlines())
    if lines and lines[0].lstrip().startswith("%%"):
        shell_lines.append(f"cell {index}: {lines[0].strip()}")
        return ""
    kept = []
    for n, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if stripped.startswith(("!", "%")):
            shell_lines.append(f"cell {index} line {n}: {stripped[:200]}")
            kept.append("")
        else:
            kept.append(line)
    return "\n".join(kept)


_PROMPT = (">>> ", "... ")


def _ipython_cleanup(lines: list[str]) -> list[str]:
    """What IPython does to a cell before it runs it, in its order, with the line numbers kept: the first
    line's indentation is removed from every line that has it (a cell that opens with a space is valid in a
    notebook), then ">>> " and "... " prompts are dropped when the cell opens with one."""
    first = next((line for line in lines if line.strip()), "")
    indent = first[:len(first) - len(first.lstrip())]
    if indent:
        lines = [line[len(indent):] if line.startswith(indent) else line for line in lines]
        first = first[len(indent):]
    if first.startswith(_PROMPT) or first.rstrip() == ">>>":
        lines = [line[4:] if line.startswith(_PROMPT) else "" if line.rstrip() in (">>>", "...") else line
                 for line in lines]
    return lines


# --- auto_map -------------------------------------------------------------------------------------------


def _read_config(ctx: ScanContext, rec: FileRecord, found: list[loadgraph.Entry]) -> Iterator[Finding]:
    if rec.size > MAX_CONFIG_BYTES:
        yield rules.finding("AUTOMAP-UNPARSEABLE", file=rec.path, scanner=NAME, severity=Severity.HIGH,
                            evidence=f"config larger than {MAX_CONFIG_BYTES} bytes; auto_map not checked")
        return
    raw = ctx.read_bytes(rec)   # parsed whatever it holds: "auto\u005fmap" is auto_map too
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        yield rules.finding("AUTOMAP-UNPARSEABLE", file=rec.path, evidence=f"{type(exc).__name__}: {exc}",
                            scanner=NAME)
        return
    found.extend(loadgraph.entries(rec.path, data))


def _automap_findings(ctx: ScanContext, found: list[loadgraph.Entry], facts: dict[str, Any]) -> Iterator[Finding]:
    present = {f.path for f in ctx.files}
    local: dict[tuple[str, str], list[str]] = {}
    for entry in found:
        if not entry.valid:
            yield rules.finding("AUTOMAP-UNPARSEABLE", file=entry.config, location=entry.where, scanner=NAME,
                                evidence=f"not a 'module.Class' reference: {entry.ref!r}")
            continue
        facts["trust_remote_code"] = True
        record = {"config": entry.config, "key": entry.key, "entry": entry.ref, "where": entry.where}
        facts["auto_map"].append(record)
        if entry.repo:
            org = entry.repo.split("/")[0]
            record.update(repo=entry.repo, org=org, country=_org_country(org))
            facts["cross_repo"].append(record)
            publisher = f"org {org}" + (f", {record['country']}" if record["country"] else "")
            yield rules.finding("AUTOMAP-CROSS-REPO", file=entry.config, location=entry.where, scanner=NAME,
                                evidence=f"{entry.key or entry.where}: {entry.ref} (code fetched at load time from "
                                         f"{entry.repo}, {publisher}, at whatever revision that repo has then)")
            continue
        record["file"] = entry.file
        if entry.file in present:
            group = entry.where.rsplit(".", 1)[0] if "." in entry.where else entry.where
            local.setdefault((entry.config, group), []).append(f"{entry.key}: {entry.ref} -> {entry.file}")
        elif entry.where.endswith("auto_mapping"):
            yield rules.finding("CODE-DYNAMIC-IMPORT", file=entry.config, location=entry.where, scanner=NAME,
                                severity=Severity.LOW, evidence=f"PEFT imports {entry.module} on load")
        else:
            yield rules.finding("AUTOMAP-MISSING-FILE", file=entry.config, location=entry.where, scanner=NAME,
                                evidence=f"{entry.key}: {entry.ref} -> {entry.file} is not in the snapshot; the "
                                         "loader would fetch it unreviewed from the repo at load time")
    for (config, group), items in local.items():
        yield rules.finding("AUTOMAP-REMOTE-CODE", file=config, location=group, scanner=NAME, evidence="; ".join(items))


def _org_country(org: str) -> str:
    """The publisher country of a Hub org from rules/origins.yaml (the provenance data), "" when unknown."""
    try:
        orgs = rules.load("origins.yaml").get("orgs") or {}
    except Exception:  # noqa: BLE001 - the registry is another family's data; its absence is not our failure
        return ""
    lowered = {str(k).lower(): v for k, v in orgs.items()}
    entry = lowered.get(org.lower())
    return str(entry.get("country") or "") if isinstance(entry, dict) else ""

