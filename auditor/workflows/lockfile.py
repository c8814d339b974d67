"""Lock files: what was audited (repo, endpoint, commit, every file's size and SHA-256, the audit
result's digest), and the check that a deployed folder still matches it.

Format (JSON, `auditor-lock` version 1):
  {"lockfile": "auditor-lock", "version": 1, "created_at", "tool_version", "target", "repo_id",
   "endpoint", "requested_revision", "commit", "files": [{"path", "size", "sha256"}],
   "audit": {"digest": "sha256:<hex of the canonical JSON report>", "verdict", "findings": {severity: n}}}
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from auditor import __version__, atomic, rules
from auditor.errors import AuditorError
from auditor.model import AuditResult, FileRecord, Finding

# Findings that mean a file is not the publisher's (or could not be shown to be): `lock` writes no lock
# and `fetch` places nothing when one is present.
BLOCKING_RULES = ("HUB-HASH-MISMATCH", "HUB-FILE-MISSING", "HUB-FILE-NOT-VERIFIED", "HUB-UNSAFE-PATH",
                  "HUB-LISTING-INCOMPLETE", "SIGNATURE-INVALID", "LINEAGE-UNVERIFIED")
KIND = "auditor-lock"
VERSION = 1
MAX_LOCK_BYTES = 64 * 1024 * 1024


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


def verification_failures(result: AuditResult) -> list[Finding]:
    """Blocking findings, waived or not: a waiver cannot make tampered bytes the publisher's."""
    return [f for f in result.findings if f.rule in BLOCKING_RULES and f.rule != "LINEAGE-UNVERIFIED"]


def write(path: str | Path, lock: dict[str, Any]) -> None:
    atomic.write(path, json.dumps(lock, indent=2, sort_keys=False) + "\n")


def read(path: str | Path) -> dict[str, Any]:
    """Parse and validate a lock file; an unreadable or malformed one is an AuditorError."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_LOCK_BYTES:
            raise AuditorError(f"{path}: lock file larger than {MAX_LOCK_BYTES} bytes")
        data = json.loads(p.read_bytes())
    except FileNotFoundError:
        raise AuditorError(f"no such lock file: {path}") from None
    except OSError as exc:
        raise AuditorError(f"cannot read lock file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise AuditorError(f"{path}: not a lock file (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("lockfile") != KIND:
        raise AuditorError(f"{path}: not an auditor lock file")
    if data.get("version") != VERSION:
        raise AuditorError(f"{path}: lock file version {data.get('version')!r} is not supported (expected {VERSION})")
    files = data.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
            and isinstance(f.get("size"), int) for f in files):
        raise AuditorError(f"{path}: malformed lock file (files must be a list of {{path, size, sha256}})")
    return data


def compare(lock: dict[str, Any], files: tuple[FileRecord, ...] | list[FileRecord],
            ignore: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """Drift between the lock and the files found: changed, missing, extra (extra code is critical)."""
    code_suffixes = tuple(rules.load("hub.yaml")["lock_code_suffixes"])
    locked = {f["path"]: f for f in lock["files"]}
    found = {f.path: f for f in files if f.path not in ignore}
    findings = []
    for path in sorted(locked):
        want = locked[path]
        rec = found.get(path)
        if rec is None:
            findings.append(rules.finding("LOCK-MISSING", file=path, scanner="lock",
                                          evidence=f"locked sha256 {want['sha256']}, {want['size']} bytes"))
        elif rec.error or rec.sha256 != want["sha256"] or rec.size != want["size"]:
            now = rec.error or f"sha256 {rec.sha256}, {rec.size} bytes"
            findings.append(rules.finding("LOCK-CHANGED", file=path, scanner="lock",
                                          evidence=f"locked sha256 {want['sha256']}, {want['size']} bytes; now {now}"))
    for path in sorted(set(found) - set(locked)):
        rec = found[path]
        rule = "LOCK-EXTRA-CODE" if PurePosixPath(path).name.lower().endswith(code_suffixes) else "LOCK-EXTRA"
        findings.append(rules.finding(rule, file=path, scanner="lock", evidence=f"sha256 {rec.sha256}, {rec.size} bytes"))
    return findings
