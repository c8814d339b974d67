"""SARIF 2.1.0 for GitHub code scanning (shared/reference/standards.md §3): the one SARIF writer.

`auditor scan --format sarif` and `auditor ci` both build their log with `Log`:
- URIs are relative to the repository root (with `originalUriBaseIds`) when the model sits inside a git
  work tree or a root is given, else relative to the model folder;
- fingerprints come from what a finding is (rule, repository-relative file, the location without its line
  numbers, the evidence with line numbers and spacing normalised), never from the line, so inserting lines
  above a finding keeps its alert; `primaryLocationLineHash` is always supplied, and binary files get no
  region, so upload-sarif never reads (or hashes) a weight file;
- only findings at or above a threshold (default low) become results; the rest are listed in the run's
  properties;
- a finding about the whole model (no file) points at the file that carries it: the manifest entry in CI,
  else the model card (README.md), else the audited file itself.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from auditor import rules
from auditor.model import AuditResult, Finding, Severity
from auditor.record import record
from auditor.reports import view

EXTENSION = ".sarif"
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/auditor-project/auditor"
ROOT_BASE_ID = "%SRCROOT%"
FINGERPRINT_KEY = "auditorFinding/v1"

# severity -> (SARIF level, GitHub security-severity); info carries no security-severity.
_LEVELS: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: ("error", "9.5"),
    Severity.HIGH: ("error", "8.0"),
    Severity.MEDIUM: ("warning", "5.5"),
    Severity.LOW: ("note", "2.0"),
    Severity.INFO: ("note", ""),
}
MAX_RESULTS = 25_000           # GitHub's per-run limit; beyond it the upload is rejected
MAX_BELOW_THRESHOLD = 1000     # facts listed in the run's properties
_TEXT_LIMIT = 1000             # shortDescription/fullDescription are capped at 1024 by GitHub
DEFAULT_THRESHOLD = Severity.LOW
# "line 12", "lines 3, 7, 9", "line 12:4", "L12", "12:4" after a comma: what moves when lines are inserted.
_LINE_REFS = re.compile(r"\b(?:lines?|L)\s*\d+(?:[:.]\d+)?(?:\s*(?:,|-|–|and)\s*\d+(?:[:.]\d+)?)*(?:,?\s*\.\.\.)?",
                        re.IGNORECASE)


def _text(value: Any, limit: int = 0) -> str:
    # SARIF messages treat {n} as placeholders; literal braces are doubled (SARIF 2.1.0 §3.11.5).
    return view.clean(value, limit).replace("{", "{{").replace("}", "}}")


def uri(path: str) -> str:
    """A relative path -> a URI reference; a name that is not UTF-8 (surrogate escapes) keeps its raw bytes."""
    return quote(path.replace("\\", "/").lstrip("/"), safe="/-._~", errors="surrogateescape") or "."


def stable_location(location: str) -> str:
    """The part of a location that survives lines inserted above it: member, opcode, AST path, byte offset."""
    return " ".join(_LINE_REFS.sub("", location or "").replace(" ,", ",").split()).strip(" ,;:@")


def normalised_evidence(evidence: str) -> str:
    return " ".join(_LINE_REFS.sub("", evidence or "").split())


def fingerprint(f: Finding, repo_path: str) -> str:
    """What the finding is, independent of where its line moved to."""
    parts = ("v1", f.rule, repo_path, stable_location(f.location), normalised_evidence(f.evidence), f.engine)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def find_work_tree(path: str | Path) -> Path | None:
    """The git work tree holding `path` (a `.git` folder or file in it or a parent), without running git."""
    try:
        current = Path(path).resolve()
    except OSError:
        return None
    for candidate in (current, *current.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


@record(frozen=True)
class Placement:
    """Where one audited model sits in the SARIF log's root."""
    prefix: str = ""                   # the model folder (or single file) relative to the root; "" = the root
    single_file: bool = False          # prefix is the audited file itself
    carrier: str = ""                  # file for findings that name no file (e.g. the manifest)
    carrier_line: int = 0
    everything_at_carrier: bool = False   # the model's files are not in the repository (a Hub entry)
    label: str = ""                    # the model, as the CI manifest names it


def placement_for(result: AuditResult, root: str | Path | None = None) -> tuple[Placement, str]:
    """(placement, root URI) for one scan: repository-relative when the model sits in a git work tree (or
    under `root`), else relative to the model folder with no base."""
    snap = result.snapshot
    if snap.kind not in ("local-folder", "local-file") and root is None:
        return Placement(), ""
    model_path = Path(snap.root) / snap.single_file if snap.single_file else Path(snap.root)
    tree = Path(root).resolve() if root is not None else find_work_tree(model_path)
    if tree is None or not snap.root:
        return Placement(), ""
    try:
        prefix = model_path.resolve().relative_to(tree).as_posix()
    except (ValueError, OSError):
        return Placement(), ""
    return Placement(prefix="" if prefix == "." else prefix, single_file=bool(snap.single_file)), tree.as_uri() + "/"


def _rule_descriptor(rule_id: str, sample: Finding) -> dict[str, Any]:
    """`sample` is the rule's most severe finding in this run: GitHub rates alerts by the rule's
    security-severity, so it follows what was found, not the catalog's default."""
    info = rules.catalog().get(rule_id)
    title = info.title if info else sample.title
    description = info.description if info else sample.title
    remediation = info.remediation if info else "See the finding's evidence."
    family = info.family if info else sample.scanner
    level, security = _LEVELS[sample.severity]
    props: dict[str, Any] = {"tags": ["security", "supply-chain", family or "auditor"][:20],
                             "precision": "high", "problem.severity": _problem(level)}
    if security:
        props["security-severity"] = security
    descriptor: dict[str, Any] = {
        "id": rule_id, "name": _camel(rule_id),
        "shortDescription": {"text": _text(title, _TEXT_LIMIT)},
        "fullDescription": {"text": _text(description, _TEXT_LIMIT)},
        "help": {"text": _text(f"{description}\n\nRemediation: {remediation}"),
                 "markdown": _text(f"{_md(description)}\n\n**Remediation:** {_md(remediation)}")},
        "defaultConfiguration": {"level": level},
        "properties": props,
    }
    refs = [r for r in (info.references if info else ()) if r.startswith("https://")]
    if refs:
        descriptor["helpUri"] = refs[0]
    return descriptor


def _md(text: str) -> str:
    from auditor.reports.markdown import escape
    return escape(text)


def _problem(level: str) -> str:
    return {"error": "error", "warning": "warning"}.get(level, "recommendation")


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.replace("_", "-").split("-") if part)


def _carrier(result: AuditResult | None, place: Placement) -> tuple[str, int]:
    """The file that carries a finding about the whole model, relative to the model folder or the root."""
    if place.carrier:
        return place.carrier, place.carrier_line
    paths = sorted(r.path for r in result.files) if result else []
    card = next((p for p in paths if p.lower() == "readme.md"), "")
    if place.single_file or (result and result.snapshot.single_file):
        return _join(place, result.snapshot.single_file if result else ""), 0
    chosen = card or next((p for p in paths if p.lower() == "config.json"), "") or (paths[0] if paths else "")
    return (_join(place, chosen) if chosen else place.prefix or "."), 0


def _join(place: Placement, path: str) -> str:
    if place.single_file:
        return place.prefix or path
    return str(PurePosixPath(place.prefix) / path) if place.prefix else path


class Log:
    """One SARIF log with one run: results from any number of audits (and CI failures) in one place."""

    def __init__(self, *, threshold: Severity = DEFAULT_THRESHOLD, root_uri: str = "", automation_id: str = "",
                 tool_version: str = "") -> None:
        self.threshold = threshold
        self.root_uri = root_uri
        self.automation_id = automation_id or "auditor/"
        self.tool_version = tool_version
        self.rules: list[dict[str, Any]] = []
        self.rule_index: dict[str, int] = {}
        self.samples: dict[str, Finding] = {}
        self.results: list[dict[str, Any]] = []
        self.below: list[dict[str, str]] = []
        self.below_count = 0
        self.dropped = 0
        self._occurrences: dict[tuple[str, str], int] = {}

    def add(self, result: AuditResult, place: Placement) -> None:
        self.tool_version = self.tool_version or result.tool_version
        for f in view.ordered(result.findings):
            self.add_finding(f, place, result)

    def add_finding(self, f: Finding, place: Placement, result: AuditResult | None = None) -> None:
        if f.severity < self.threshold:
            self.below_count += 1
            if len(self.below) < MAX_BELOW_THRESHOLD:
                self.below.append({"rule": f.rule, "severity": f.severity.label, "file": view.clean(f.file),
                                   "title": view.clean(f.title, 300), **({"model": place.label} if place.label else {})})
            return
        if len(self.results) >= MAX_RESULTS:
            self.dropped += 1
            return
        self._note_rule(f)
        self.results.append(self._result(f, place, result))

    def _note_rule(self, f: Finding) -> None:
        if f.rule not in self.rule_index:
            self.rule_index[f.rule] = len(self.samples)
            self.samples[f.rule] = f
        elif f.severity > self.samples[f.rule].severity:
            self.samples[f.rule] = f

    def _result(self, f: Finding, place: Placement, result: AuditResult | None) -> dict[str, Any]:
        level, _ = _LEVELS[f.severity]
        line = view.line_of(f.location)
        if place.everything_at_carrier or not f.file:
            path, line = _carrier(result, place)
        else:
            path = _join(place, f.file)
        message = f"[{f.severity.label}] {f.title}"
        if f.file and place.everything_at_carrier:
            message += f" in {f.file}"
        if f.location:
            message += f" ({f.location})"
        if f.evidence:
            message += f": {f.evidence}"
        digest = fingerprint(f, path)
        seen = self._occurrences.get((path, digest), 0) + 1
        self._occurrences[(path, digest)] = seen
        artifact: dict[str, Any] = {"uri": uri(path)}
        if self.root_uri:
            artifact["uriBaseId"] = ROOT_BASE_ID
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if line:                      # text with a line; binary files get no region (nothing to hash)
            physical["region"] = {"startLine": line}
        entry: dict[str, Any] = {
            "ruleId": f.rule, "ruleIndex": self.rule_index[f.rule], "level": level,
            "message": {"text": _text(message, 4000)},
            "locations": [{"physicalLocation": physical}],
            "fingerprints": {FINGERPRINT_KEY: digest},
            "partialFingerprints": {"primaryLocationLineHash": f"{digest[:32]}:{seen}"},
            "properties": {"severity": f.severity.label, "scanner": view.clean(f.scanner),
                           "engine": view.clean(f.engine),
                           **({"model": view.clean(place.label)} if place.label else {})},
        }
        if f.waived:
            entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                      "justification": _text(f.waiver or "waived", 1000)}]
        return entry

    def to_dict(self, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        props = dict(properties or {})
        props["threshold"] = self.threshold.label
        if self.below_count:
            props["belowThreshold"] = {"count": self.below_count, "findings": self.below}
        if self.dropped:
            props["truncated"] = f"{self.dropped} findings beyond GitHub's limit of {MAX_RESULTS} omitted"
        run: dict[str, Any] = {
            "tool": {"driver": {
                "name": "auditor", "version": self.tool_version or "0", "semanticVersion": self.tool_version or "0",
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(rid, sample) for rid, sample in self.samples.items()]}},
            "automationDetails": {"id": self.automation_id},
            "results": self.results,
            "properties": props,
        }
        if self.root_uri:
            run["originalUriBaseIds"] = {ROOT_BASE_ID: {"uri": self.root_uri}}
        return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def to_dict(result: AuditResult, *, root: str | Path | None = None,
            threshold: Severity = DEFAULT_THRESHOLD) -> dict[str, Any]:
    place, root_uri = placement_for(result, root)
    model = view.model_name(result)
    log = Log(threshold=threshold, root_uri=root_uri, tool_version=result.tool_version,
              automation_id=f"auditor/{_text(model, 200).replace('/', '-')}/")
    log.add(result, place)
    return log.to_dict({
        "target": view.clean(result.target), "revision": view.clean(view.revision(result)),
        "verdict": result.verdict.decision, "policy": view.clean(result.verdict.policy),
        "claims": [{"id": c.id, "status": c.status.value, "reason": view.clean(c.reason)} for c in result.claims],
    })


def render(result: AuditResult, *, root: str | Path | None = None, threshold: Severity = DEFAULT_THRESHOLD) -> str:
    return json.dumps(to_dict(result, root=root, threshold=threshold), indent=2, ensure_ascii=False) + "\n"
