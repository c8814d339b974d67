"""The canonical JSON report (schema auditor.report/v1, documented in README.md).

Every other format can be re-rendered from it: `from_dict(to_dict(r))` gives back an equal result.
Keys are only ever added, never renamed.

`tool.rules` is rules.digest() of the rules the report was rendered with (in the process that audited).
`digest` is the report's own digest: "sha256:" + SHA-256 of the canonical JSON (keys sorted, no spaces,
UTF-8) of the report without its `digest` key. `verify_digest()` recomputes it, so an edit is detected.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, TypeVar

from auditor import rules
from auditor.model import Ancestor, AuditResult, Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot, Verdict

SCHEMA = "auditor.report/v1"
EXTENSION = ".json"

T = TypeVar("T")


def to_dict(result: AuditResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "auditor", "version": result.tool_version, "rules": rules.digest()},
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


def digest(data: dict[str, Any]) -> str:
    """The report's own digest (see the module docstring); the `digest` key itself is left out."""
    # through JSON first, so the digest of the dict written and of the dict read back are the same
    body = json.loads(json.dumps({k: v for k, v in data.items() if k != "digest"}, default=str))
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_digest(data: dict[str, Any]) -> bool:
    """True when the report carries a digest and it matches its content."""
    return isinstance(data.get("digest"), str) and data["digest"] == digest(data)


def render(result: AuditResult) -> str:
    data = to_dict(result)
    data["digest"] = digest(data)
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _known(cls: type[T], data: dict[str, Any], **override: Any) -> T:
    """Build cls from the keys it knows: a report from a newer version (with added keys) still loads."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names}, **override)


def from_dict(data: dict[str, Any]) -> AuditResult:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not an auditor report (schema {data.get('schema')!r}, expected {SCHEMA!r})")
    snap = {k: v for k, v in data["snapshot"].items() if k not in ("hosts_contacted", "ancestors")}
    snapshot = _known(Snapshot, snap, hosts_contacted=tuple(data["snapshot"].get("hosts_contacted", ())),
                      ancestors=tuple(_known(Ancestor, a) for a in data["snapshot"].get("ancestors", ())))
    findings = tuple(
        _known(Finding, {k: v for k, v in f.items() if k not in ("severity", "references")},
               severity=Severity.parse(f["severity"]), references=tuple(f.get("references", ())))
        for f in data["findings"])
    v = data["verdict"]
    return AuditResult(
        target=data["target"], snapshot=snapshot,
        files=tuple(_known(FileRecord, f) for f in data["files"]), findings=findings,
        verdict=Verdict(decision=v["decision"], policy=v["policy"], reasons=tuple(v.get("reasons", ())),
                        counts=dict(v.get("counts", {}))),
        claims=tuple(Claim(id=c["id"], title=c["title"], status=ClaimStatus(c["status"]), reason=c["reason"],
                           evidence=tuple(c.get("evidence", ()))) for c in data["claims"]),
        facts=data.get("facts", {}), timings=data.get("timings", {}),
        tool_version=data["tool"]["version"], started_at=data.get("started_at", ""))
