"""SARIF 2.1.0 for GitHub code scanning (shared/reference/standards.md §3).

One run per audit; every rule the result mentions, with help text from the rule catalog and a
`security-severity`; binary files are located at line 1, text at the line the scanner named; each
result carries its own stable `primaryLocationLineHash` so re-uploads do not duplicate alerts.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from auditor import rules
from auditor.model import AuditResult, Finding, Severity
from auditor.reports import view

EXTENSION = ".sarif"
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/auditor-project/auditor"

# severity -> (SARIF level, GitHub security-severity); info carries no security-severity.
_LEVELS: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: ("error", "9.5"),
    Severity.HIGH: ("error", "8.0"),
    Severity.MEDIUM: ("warning", "5.5"),
    Severity.LOW: ("note", "2.0"),
    Severity.INFO: ("note", ""),
}
_MAX_RESULTS = 25_000          # GitHub's per-run limit; beyond it the upload is rejected
_TEXT_LIMIT = 1000             # shortDescription/fullDescription are capped at 1024 by GitHub


def render(result: AuditResult) -> str:
    return json.dumps(to_dict(result), indent=2, ensure_ascii=False) + "\n"


def _text(value: Any, limit: int = 0) -> str:
    # SARIF messages treat {n} as placeholders; literal braces are doubled (SARIF 2.1.0 §3.11.5).
    return view.clean(value, limit).replace("{", "{{").replace("}", "}}")


def _uri(path: str) -> str:
    return quote(path.replace("\\", "/").lstrip("/"), safe="/-._~") or "."


def _rule_descriptor(rule_id: str, sample: Finding) -> dict[str, Any]:
    """`sample` is the rule's most severe finding in this run: GitHub rates alerts by the rule's
    security-severity, so it follows what was found, not the catalog's default."""
    info = rules.catalog().get(rule_id)
    severity = sample.severity
    title = info.title if info else sample.title
    description = info.description if info else sample.title
    remediation = info.remediation if info else "See the finding's evidence."
    family = info.family if info else sample.scanner
    level, security = _LEVELS[severity]
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


def _fingerprint(f: Finding) -> str:
    digest = hashlib.sha256("|".join((f.rule, f.file, f.location, f.evidence)).encode("utf-8")).hexdigest()
    return f"{digest[:16]}:{view.line_of(f.location) or 1}"


def _result(f: Finding, rule_index: int, manifest: str) -> dict[str, Any]:
    level, _ = _LEVELS[f.severity]
    message = f"[{f.severity.label}] {f.title}"
    if f.location:
        message += f" ({f.location})"
    if f.evidence:
        message += f": {f.evidence}"
    region = {"startLine": view.line_of(f.location) or 1}
    uri = _uri(f.file or manifest)
    entry: dict[str, Any] = {
        "ruleId": f.rule, "ruleIndex": rule_index, "level": level,
        "message": {"text": _text(message, 4000)},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                            "region": region}}],
        "partialFingerprints": {"primaryLocationLineHash": _fingerprint(f)},
        "properties": {"severity": f.severity.label, "scanner": view.clean(f.scanner),
                       "engine": view.clean(f.engine)},
    }
    if f.waived:
        entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": _text(f.waiver or "waived", 1000)}]
    return entry


def to_dict(result: AuditResult) -> dict[str, Any]:
    findings = view.ordered(result.findings)[:_MAX_RESULTS]
    # A finding about the whole repo (no file) is located at the model card, the file a reader opens first.
    manifest = next((r.path for r in result.files if r.path.lower() == "readme.md"), "README.md")
    rule_ids: list[str] = []
    samples: dict[str, Finding] = {}
    for f in findings:
        if f.rule not in samples:
            samples[f.rule] = f
            rule_ids.append(f.rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    model = view.model_name(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "auditor", "version": result.tool_version, "semanticVersion": result.tool_version,
            "informationUri": INFORMATION_URI,
            "rules": [_rule_descriptor(rid, samples[rid]) for rid in rule_ids]}},
        "automationDetails": {"id": f"auditor/{_text(model, 200).replace('/', '-')}/"},
        "results": [_result(f, index[f.rule], manifest) for f in findings],
        "properties": {
            "target": view.clean(result.target), "revision": view.clean(view.revision(result)),
            "verdict": result.verdict.decision, "policy": view.clean(result.verdict.policy),
            "claims": [{"id": c.id, "status": c.status.value, "reason": view.clean(c.reason)}
                       for c in result.claims],
        },
    }
    if len(result.findings) > _MAX_RESULTS:
        run["properties"]["truncated"] = f"{len(result.findings) - _MAX_RESULTS} findings beyond GitHub's limit omitted"
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
