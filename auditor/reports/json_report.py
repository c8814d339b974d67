"""The canonical JSON report (schema auditor.report/v1, documented in README.md).

Every other format can be re-rendered from it: `from_dict(to_dict(r))` gives back an equal result.
Keys are only ever added, never renamed.
"""
from __future__ import annotations

import json
from typing import Any

from auditor.model import (Ancestor, AuditResult, Claim, ClaimStatus, FileRecord, Finding, Severity,
                           Snapshot, Verdict)

SCHEMA = "auditor.report/v1"
EXTENSION = ".json"


def to_dict(result: AuditResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "auditor", "version": result.tool_version},
        "target": result.target,
        "started_at": result.started_at,
        "snapshot": result.snapshot.to_dict(),
        "files": [f.to_dict() for f in result.files],
        "findings": [f.to_dict() for f in result.findings],
        "verdict": result.verdict.to_dict(),
        "claims": [c.to_dict() for c in result.claims],
        "facts": result.facts,
        "timings": result.timings,
    }


def render(result: AuditResult) -> str:
    return json.dumps(to_dict(result), indent=2, ensure_ascii=False, default=str) + "\n"


def from_dict(data: dict[str, Any]) -> AuditResult:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not an auditor report (schema {data.get('schema')!r}, expected {SCHEMA!r})")
    snap = dict(data["snapshot"])
    snap["hosts_contacted"] = tuple(snap.get("hosts_contacted", ()))
    snap["ancestors"] = tuple(Ancestor(**a) for a in snap.get("ancestors", ()))
    findings = []
    for f in data["findings"]:
        f = dict(f)
        f["severity"] = Severity.parse(f["severity"])
        f["references"] = tuple(f.get("references", ()))
        findings.append(Finding(**f))
    v = data["verdict"]
    return AuditResult(
        target=data["target"], snapshot=Snapshot(**snap),
        files=tuple(FileRecord(**f) for f in data["files"]), findings=tuple(findings),
        verdict=Verdict(decision=v["decision"], policy=v["policy"], reasons=tuple(v.get("reasons", ())),
                        counts=dict(v.get("counts", {}))),
        claims=tuple(Claim(id=c["id"], title=c["title"], status=ClaimStatus(c["status"]), reason=c["reason"],
                           evidence=tuple(c.get("evidence", ()))) for c in data["claims"]),
        facts=data.get("facts", {}), timings=data.get("timings", {}),
        tool_version=data["tool"]["version"], started_at=data.get("started_at", ""))
