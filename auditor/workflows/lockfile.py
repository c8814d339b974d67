"""`auditor lock`'s side of lock files: build one from an audit, write it, and the findings that forbid
writing one (rules/hub.yaml `blocking_rules`). The file format itself (read, validate, drift) is
auditor/parsers/lockfile.py; drift becomes LOCK-* findings in the integrity scanner."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor import __version__, atomic, rules
from auditor.model import AuditResult, FileRecord, Finding
from auditor.parsers.lockfile import KIND, MAX_LOCK_BYTES, VERSION, read

__all__ = ["KIND", "MAX_LOCK_BYTES", "VERSION", "blocking_rules", "build", "compare", "read",
           "verification_failures", "write"]


def build(result: AuditResult, report_json: str) -> dict[str, Any]:
    snap = result.snapshot
    counts: dict[str, int] = {}
    for f in result.findings:
        if not f.waived:
            counts[f.severity.label] = counts.get(f.severity.label, 0) + 1
    return {
        "lockfile": KIND, "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool_version": __version__, "target": result.target, "repo_id": snap.repo_id,
        "endpoint": snap.endpoint, "requested_revision": snap.requested_revision,
        "commit": snap.resolved_revision,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256}
                  for f in sorted(result.files, key=lambda r: r.path) if not f.error],
        "audit": {"digest": "sha256:" + hashlib.sha256(report_json.encode("utf-8")).hexdigest(),
                  "verdict": result.verdict.decision, "findings": counts},
    }


def blocking_rules() -> frozenset[str]:
    """Findings that mean a file is not the publisher's (or could not be shown to be): `lock` writes
    no lock and `fetch` places nothing when one is present."""
    return frozenset(rules.load("hub.yaml")["blocking_rules"])


def verification_failures(result: AuditResult) -> list[Finding]:
    """Blocking findings, waived or not: a waiver cannot make tampered bytes the publisher's."""
    blocking = blocking_rules()
    return [f for f in result.findings if f.rule in blocking]


def write(path: str | Path, lock: dict[str, Any]) -> None:
    atomic.write(path, json.dumps(lock, indent=2, sort_keys=False) + "\n")


def compare(lock: dict[str, Any], files: tuple[FileRecord, ...] | list[FileRecord],
            ignore: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """Drift between the lock and the files found, as LOCK-* findings (`auditor verify`)."""
    from auditor.scanners import integrity
    return integrity.lock_findings(lock, files, ignore, scanner="lock")
