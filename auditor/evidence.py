"""Findings and provenance facts -> the "no direct connection" claims (rules/claims.yaml).

Nothing is `supported` unless the checks behind it ran: a claim whose scanners did not run, or
whose files could not be verified, is `not assessed`.
"""
from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from auditor import rules
from auditor.model import Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot


def _matches(rule: str, globs: Iterable[str]) -> bool:
    return any(fnmatchcase(rule, g) for g in globs)


def build(snapshot: Snapshot, files: tuple[FileRecord, ...], findings: list[Finding],
          scanners_ran: set[str]) -> tuple[Claim, ...]:
    active = [f for f in findings if not f.waived]
    claims = []
    for spec in rules.load("claims.yaml")["claims"]:
        claims.append(_decide(spec, snapshot, files, active, scanners_ran))
    return tuple(claims)


def _decide(spec: dict, snapshot: Snapshot, files: tuple[FileRecord, ...], active: list[Finding],
            scanners_ran: set[str]) -> Claim:
    cid, title = spec["id"], spec["title"]
    floor = Severity.parse(spec.get("min_severity", "medium"))
    refuting = [f for f in active if _matches(f.rule, spec["refuted_by"]) and f.severity >= floor]
    if refuting:
        return Claim(cid, title, ClaimStatus.REFUTED, _reason(refuting), _ids(refuting))
    missing = [s for s in spec.get("requires", []) if s not in scanners_ran]
    if missing:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"the check behind it did not run ({', '.join(missing)})")
    unverified = [f for f in active if _matches(f.rule, spec.get("unverified_by", []))]
    if unverified:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"{len(unverified)} item(s) could not be verified: {_reason(unverified)}", _ids(unverified))
    special = _SPECIAL.get(cid)
    if special is not None:
        return special(cid, title, snapshot, files)
    if not files:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED, "no files were audited")
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"{len(files)} file(s) checked by {', '.join(sorted(scanners_ran)) or 'the inventory'}; "
                 "no finding contradicts it", tuple(sorted(scanners_ran)))


def _integrity(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...]) -> Claim:
    if not snapshot.resolved_revision:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     "the files are not tied to a commit (a local folder with no provenance)")
    unverified = [f.path for f in files if not (f.publisher_sha256 or f.publisher_git_sha1)]
    if unverified:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED,
                     f"{len(unverified)} file(s) have no publisher hash to compare with", tuple(unverified[:20]))
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"{len(files)} file(s) at commit {snapshot.resolved_revision} match the publisher's hashes",
                 (f"commit:{snapshot.resolved_revision}",) + tuple(f"sha256:{f.sha256} {f.path}" for f in files[:50]))


def _route(cid: str, title: str, snapshot: Snapshot, files: tuple[FileRecord, ...]) -> Claim:
    if not snapshot.endpoint:
        return Claim(cid, title, ClaimStatus.NOT_ASSESSED, "the files were not fetched by auditor, so the route is unknown")
    hosts = ", ".join(snapshot.hosts_contacted) or "none recorded"
    return Claim(cid, title, ClaimStatus.SUPPORTED,
                 f"fetched through {snapshot.endpoint}; hosts contacted: {hosts}",
                 (f"endpoint:{snapshot.endpoint}",) + tuple(f"host:{h}" for h in snapshot.hosts_contacted))


_SPECIAL = {"integrity": _integrity, "route": _route}


def _ids(findings: list[Finding]) -> tuple[str, ...]:
    return tuple(f"{f.rule}:{f.file}:{f.location}".rstrip(":") for f in findings[:50])


def _reason(findings: list[Finding]) -> str:
    first = findings[0]
    more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
    where = f" in {first.file}" if first.file else ""
    return f"{first.rule}{where}: {first.title}{more}"
