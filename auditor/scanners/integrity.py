"""Integrity: every file's SHA-256 against the publisher's hashes, and against the lock file.

The only scanner that needs the inventory's hashes, so it runs last: the others run while the
inventory is still hashing (ctx.hashed_files() waits for it).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import IntegrityFacts
from auditor.model import FileRecord, Finding
from auditor.scanners import ScanContext

NAME = "integrity"
MAX_GIT_SHA1_BYTES = 64 * 1024 * 1024     # small files only have a git blob SHA-1; bigger ones are in LFS


def scan(ctx: ScanContext) -> Iterator[Finding]:
    ctx.hashed_files()
    yield from _verify_hashes(ctx)
    yield from _lock(ctx)


def _finding(rule: str, **kwargs: Any) -> Finding:
    return rules.finding(rule, scanner=NAME, **kwargs)


def _verify_hashes(ctx: ScanContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    has_publisher = bool(snap.publisher_hashes)
    # A local HF cache names blobs by the etag the server sent at download time: it proves the cache is
    # consistent with what was served, not with the publisher's listing.
    lists = "the cache's blob name (the server's etag) says" if snap.kind == "hf-cache" else "the publisher lists"
    counts = {"verified": 0, "mismatched": 0, "unverified": 0, "not_downloaded": 0}
    for rec in ctx.files:
        if rec.error:
            continue
        if rec.publisher_sha256:
            if rec.format == "lfs-pointer":
                counts["unverified"] += 1       # the inventory reports the pointer itself
                continue
            if rec.sha256 != rec.publisher_sha256:
                counts["mismatched"] += 1
                yield _finding("HUB-HASH-MISMATCH", file=rec.path,
                               evidence=f"sha256 {rec.sha256} but {lists} {rec.publisher_sha256}"
                                        f" at commit {snap.resolved_revision or '?'}")
            else:
                counts["verified"] += 1
        elif rec.publisher_git_sha1:
            actual = _git_sha1(ctx, rec)
            if actual is None:
                counts["unverified"] += 1
                yield _finding("HUB-FILE-NOT-VERIFIED", file=rec.path,
                               evidence=f"{rec.size} bytes; git blob SHA-1 computed only up to {MAX_GIT_SHA1_BYTES}")
            elif actual != rec.publisher_git_sha1:
                counts["mismatched"] += 1
                yield _finding("HUB-HASH-MISMATCH", file=rec.path,
                               evidence=f"git blob sha1 {actual} but {lists} {rec.publisher_git_sha1}"
                                        f" at commit {snap.resolved_revision or '?'}")
            else:
                counts["verified"] += 1
        elif has_publisher:
            counts["unverified"] += 1
            yield _finding("HUB-PUBLISHER-HASH-MISSING", file=rec.path,
                           evidence=f"not in the publisher's listing at {snap.resolved_revision or 'the commit'}")
    if snap.kind == "hub" and not snap.metadata_only:
        present = {rec.path for rec in ctx.files}
        for path in sorted(set(snap.publisher_hashes) - present):
            yield _finding("HUB-FILE-MISSING", file=path, evidence=f"listed at {snap.resolved_revision}")
    counts["not_downloaded"] = len(snap.facts.get("remote_files", []))
    ctx.facts.publish(IntegrityFacts(verification=counts))


def _git_sha1(ctx: ScanContext, rec: FileRecord) -> str | None:
    if rec.size > MAX_GIT_SHA1_BYTES:
        return None
    digest = hashlib.sha1(b"blob %d\0" % rec.size, usedforsecurity=False)
    try:
        with open(ctx.fspath(rec), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _lock(ctx: ScanContext) -> Iterator[Finding]:
    """With Options.lock_file, the audited files are compared with the lock (LOCK-* refute integrity)."""
    if not ctx.options.lock_file:
        return
    from auditor.errors import AuditorError
    from auditor.parsers import lockfile
    try:
        lock = lockfile.read(ctx.options.lock_file)
    except AuditorError as exc:
        yield _finding("LOCK-INVALID", evidence=str(exc))
        return
    if lock.get("commit") and ctx.snapshot.resolved_revision and lock["commit"] != ctx.snapshot.resolved_revision:
        yield _finding("LOCK-CHANGED", severity="high", title="The audited commit is not the locked one",
                       evidence=f"locked {lock['commit']}, audited {ctx.snapshot.resolved_revision}")
    yield from lock_findings(lock, ctx.files)


def lock_findings(lock: dict[str, Any], files: Any, ignore: frozenset[str] | set[str] = frozenset(),
                  scanner: str = NAME) -> list[Finding]:
    """Drift from a lock as findings: LOCK-CHANGED, LOCK-MISSING, LOCK-EXTRA (LOCK-EXTRA-CODE for code a
    loader can run, rules/hub.yaml `lock_code_suffixes`)."""
    from pathlib import PurePosixPath

    from auditor.parsers import lockfile
    code_suffixes = tuple(rules.load("hub.yaml")["lock_code_suffixes"])
    findings = []
    for d in lockfile.drift(lock, files, ignore):
        want = f"locked sha256 {d.locked['sha256']}, {d.locked['size']} bytes" if d.locked else ""
        if d.kind == "missing":
            findings.append(rules.finding("LOCK-MISSING", file=d.path, scanner=scanner, evidence=want))
        elif d.kind == "changed":
            findings.append(rules.finding("LOCK-CHANGED", file=d.path, scanner=scanner, evidence=f"{want}; now {d.now}"))
        else:
            rule = "LOCK-EXTRA-CODE" if PurePosixPath(d.path).name.lower().endswith(code_suffixes) else "LOCK-EXTRA"
            findings.append(rules.finding(rule, file=d.path, scanner=scanner, evidence=d.now))
    return findings
