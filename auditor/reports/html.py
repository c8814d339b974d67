"""One self-contained HTML file: no external assets, a strict Content-Security-Policy, filterable findings.

The page is our own Jinja2 template (reports/report.html.j2) with autoescaping on; every value from
the result is first neutralised by view.clean(), then HTML-escaped by Jinja. The only script is our own
reports/report.js, allowed by its hash in the CSP, so nothing injected could run even if escaping failed.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterator
from typing import Any

from auditor.model import AuditResult
from auditor.reports import view

EXTENSION = ".html"


@functools.cache
def _environment():  # type: ignore[no-untyped-def]
    import jinja2

    from auditor.rules import data_dir
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("reports"))),
                              autoescape=True, undefined=jinja2.StrictUndefined)


@functools.cache
def _script() -> tuple[str, str]:
    from auditor.rules import data_dir
    text = (data_dir("reports") / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"sha256-{digest}"


def context(result: AuditResult) -> dict[str, Any]:
    c = view.clean
    counts = view.counts_line(result)
    license_block = None
    if view.license_facts(result):
        law, venue = view.law_and_venue(result)
        license_block = {
            "name": c(view.license_label(result)), "law": c(law), "venue": c(venue),
            "obligations": [{"term": c(o.get("term", "")), "summary": c(o.get("summary", "")),
                             "source": c(o.get("source") or o.get("from") or "")} for o in view.obligations(result)]}
    sig = view.signature(result)
    script, script_hash = _script()
    return {
        "model": c(view.model_name(result)), "target": c(view.shareable_path(result.target)), "revision": c(view.revision(result)),
        "decision": result.verdict.decision if result.verdict.decision in ("pass", "warn", "fail") else "fail",
        "policy": c(result.verdict.policy), "reasons": [c(r) for r in result.verdict.reasons],
        "counts_line": counts, "started_at": c(result.started_at), "tool_version": c(result.tool_version),
        "claims": [{"title": c(cl.title), "status": cl.status.value, "css": cl.status.value.replace(" ", "-"),
                    "reason": c(cl.reason), "evidence": [c(e) for e in cl.evidence]} for cl in result.claims],
        "findings": _issues(result),
        "finding_count": len(result.findings),
        "rule_facets": sorted({c(f.rule) for f in result.findings}),
        "license": license_block,
        "publisher": c(view.publisher_line(result)),
        "origin": c(view.effective_origin_line(result)),
        "signature": c(sig.get("status") or view.NOT_ASSESSED),
        "lineage": [{"depth": e.depth, "repo_id": c(e.repo_id), "relation": c(e.relation or "?"),
                     "origin": c(view.origin_line({"org": e.org, "entity": e.entity, "country": e.country})),
                     "license": c(e.license or e.error or "?")} for e in view.lineage(result)],
        "files": ({"path": c(r.path), "format": c(r.format), "size": view.human_size(r.size),
                   "sha256": r.sha256 or c(r.error or "unreadable")} for r in result.files),   # made as written
        "file_count": len(result.files),
        "script": script, "script_hash": script_hash,
    }


def _issues(result: AuditResult) -> list[dict[str, Any]]:
    """One row per issue: repeats of a finding (same rule, title and file) with all their places."""
    c = view.clean
    return [{"severity": i.first.severity.label, "rank": int(i.first.severity), "rule": c(i.first.rule),
             "file": c(i.first.file), "locations": [c(loc) for loc in i.locations], "title": c(i.first.title),
             "evidence": [c(e) for e in i.evidence], "waived": i.first.waived, "waiver": c(i.first.waiver)}
            for i in view.issues(result.findings)]


def render(result: AuditResult) -> str:
    return "".join(iter_render(result))


def iter_render(result: AuditResult) -> Iterator[str]:
    """The page as Jinja writes it, piece by piece (the file rows are made as they are written)."""
    return _environment().get_template("report.html.j2").generate(**context(result))
