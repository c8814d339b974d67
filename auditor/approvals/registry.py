"""Approve, revoke, the approvals' state at a given time, `check` a target and `reaudit` the approved.

An approval names the model by its manifest digest (model.manifest_digest: every file's path and
SHA-256), with the repo id and commit where known, the result's own digest, the policy, verdict, rules
digest and tool version of the audit, and the hashes of the evidence files. State is derived from the
history: an approval is revoked when a later revoke entry names it, expired when its date has passed.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from auditor import inventory, sources
from auditor.approvals.chain import Entry
from auditor.approvals.results import LoadedResult
from auditor.approvals.store import Store
from auditor.errors import AuditorError
from auditor.model import AuditResult, FileRecord, Options, manifest_digest
from auditor.record import field, record


class Refused(AuditorError):
    """The approval is refused by policy (a failing result without --override): exit 1."""
    exit_code = 1


def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date (valid through that day, UTC, when end_of_day) or an ISO date-time (UTC if naive)."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AuditorError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@record(frozen=True)
class Approval:
    entry: Entry
    data: dict[str, Any]
    revocation: dict[str, Any] | None = None     # the revoke entry's body plus its seq and time

    @property
    def seq(self) -> int:
        return self.entry.seq

    @property
    def model(self) -> dict[str, Any]:
        return dict(self.data.get("model", {}))

    @property
    def expires_at(self) -> datetime | None:
        text = self.data.get("approval", {}).get("expires_at", "")
        return datetime.fromisoformat(text) if text else None

    def status(self, at: datetime) -> str:
        if self.revocation is not None:
            return "revoked"
        if self.expires_at is not None and at >= self.expires_at:
            return "expired"
        return "active"

    def label(self) -> str:
        m = self.model
        if m.get("repo_id"):
            return m["repo_id"] + (f"@{m['commit'][:12]}" if m.get("commit") else "")
        return str(m.get("root") or m.get("target", "?"))

    def to_dict(self, at: datetime) -> dict[str, Any]:
        return {"id": self.seq, "status": self.status(at), "created_at": self.entry.created_at,
                "manifest_digest": self.entry.manifest_digest, **self.data, "revocation": self.revocation}


def _audit_target(result: AuditResult) -> str:
    """What to audit again later: the pinned Hub revision, or the absolute local path."""
    snap = result.snapshot
    if snap.kind == "hub":
        return f"hf://{snap.repo_id}@{snap.resolved_revision}" if snap.resolved_revision else result.target
    if snap.single_file:
        return str(Path(snap.root) / snap.single_file)
    return snap.root


def _hash_file(path: str) -> dict[str, str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise AuditorError(f"cannot read evidence file {path}: {exc.strerror or exc}") from None
    return {"path": str(Path(path).resolve()), "sha256": h.hexdigest()}


def approve(store: Store, loaded: LoadedResult, *, by: str, reason: str, expires: str = "", ticket: str = "",
            override: str = "", policy_source: str = "", evidence: tuple[str, ...] = ()) -> Entry:
    from auditor.judge import policy as policies
    result = loaded.result
    if not by.strip() or not reason.strip():
        raise AuditorError("--by and --reason must not be empty")
    source = policy_source or result.verdict.policy
    chosen = policies.load(source)
    if chosen.name != result.verdict.policy:
        raise AuditorError(f"--policy {source} is policy {chosen.name!r}, but the result was judged by "
                           f"{result.verdict.policy!r}")
    if result.verdict.decision == "fail" and not override.strip():
        raise Refused(f"refused: {loaded.path} failed policy {result.verdict.policy} "
                      f"({'; '.join(result.verdict.reasons[:3]) or 'fail'}); use --override REASON to approve anyway")
    expires_at = ""
    if expires:
        moment = parse_time(expires, end_of_day=True)
        if moment <= datetime.now(UTC):
            raise AuditorError(f"--expires {expires} is already in the past")
        expires_at = moment.isoformat()
    snap = result.snapshot
    body = {
        "approval": {"by": by.strip(), "reason": reason.strip(), "ticket": ticket, "expires_at": expires_at,
                     "override": override.strip()},
        "model": {"repo_id": snap.repo_id, "commit": snap.resolved_revision, "endpoint": snap.endpoint,
                  "target": result.target, "kind": snap.kind, "root": snap.root, "audit_target": _audit_target(result),
                  "files": [[f.path, f.size, f.sha256] for f in sorted(result.files, key=lambda r: r.path)]},
        "audit": {"result_digest": loaded.digest, "policy": result.verdict.policy, "policy_source": source,
                  "verdict": result.verdict.decision, "counts": dict(result.verdict.counts),
                  "rules_digest": loaded.rules_digest, "tool_version": result.tool_version,
                  "started_at": result.started_at},
        "evidence": [{"path": loaded.path, "sha256": loaded.sha256}] + [_hash_file(p) for p in evidence],
    }
    return store.append("approve", manifest_digest(result.files), body)


def approvals(store: Store) -> list[Approval]:
    """Every approval with its revocation (if any), oldest first."""
    found: dict[int, Approval] = {}
    for entry in store.entries():
        if entry.kind == "approve":
            found[entry.seq] = Approval(entry=entry, data=entry.data)
        elif entry.kind == "revoke" and entry.subject in found and found[entry.subject].revocation is None:
            old = found[entry.subject]
            found[entry.subject] = Approval(entry=old.entry, data=old.data,
                                            revocation={"id": entry.seq, "at": entry.created_at, **entry.data})
    return list(found.values())


def get(store: Store, approval_id: int) -> Approval:
    for a in approvals(store):
        if a.seq == approval_id:
            return a
    raise AuditorError(f"no approval with id {approval_id}")


def revoke(store: Store, approval_id: int, *, by: str, reason: str) -> Entry:
    target = get(store, approval_id)
    if target.revocation is not None:
        raise AuditorError(f"approval {approval_id} is already revoked (entry {target.revocation['id']})")
    if not by.strip() or not reason.strip():
        raise AuditorError("--by and --reason must not be empty")
    return store.append("revoke", target.entry.manifest_digest, {"by": by.strip(), "reason": reason.strip()},
                        subject=approval_id)


@record(frozen=True)
class Identity:
    """What a target is now: its files and manifest digest."""
    label: str
    manifest_digest: str
    files: dict[str, tuple[int, str]]
    repo_id: str = ""
    commit: str = ""
    root: str = ""


def _lock_identity(path: Path) -> Identity | None:
    from auditor.parsers import lockfile
    try:
        if path.stat().st_size > lockfile.MAX_LOCK_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("lockfile") != lockfile.KIND:
        return None
    lock = lockfile.read(path)
    records = [FileRecord(path=f["path"], size=f["size"], sha256=f["sha256"], format="") for f in lock["files"]]
    return Identity(label=f"lock file {path}", manifest_digest=manifest_digest(records),
                    files={r.path: (r.size, r.sha256) for r in records}, repo_id=lock.get("repo_id", ""),
                    commit=lock.get("commit", ""))


def identify(target: str, endpoint: str = "") -> Identity:
    """Hash a folder, file, cache snapshot or Hub target (or read a lock file) into an Identity."""
    path = Path(target).expanduser()
    if path.is_file():
        locked = _lock_identity(path)
        if locked is not None:
            return locked
    options = Options(endpoint=endpoint)
    snapshot = sources.open_snapshot(target, options)
    inv = inventory.build(snapshot, options)
    root = str(Path(snapshot.root) / snapshot.single_file) if snapshot.single_file else snapshot.root
    return Identity(label=target, manifest_digest=manifest_digest(inv.files),
                    files={f.path: (f.size, f.sha256) for f in inv.files}, repo_id=snapshot.repo_id,
                    commit=snapshot.resolved_revision, root=root)


@record(frozen=True)
class CheckOutcome:
    approved: bool
    reason: str
    target: str
    manifest_digest: str
    approval: dict[str, Any] | None = None
    changed: dict[str, list[str]] = field(default_factory=dict)   # modified / added / removed

    def to_dict(self) -> dict[str, Any]:
        return {"approved": self.approved, "reason": self.reason, "target": self.target,
                "manifest_digest": self.manifest_digest, "approval": self.approval, "changed": self.changed}


def _changes(approved: dict[str, Any], now: dict[str, tuple[int, str]]) -> dict[str, list[str]]:
    then = {p: (size, sha) for p, size, sha in approved.get("files", [])}
    return {"modified": sorted(p for p in then.keys() & now.keys() if then[p] != now[p]),
            "added": sorted(now.keys() - then.keys()), "removed": sorted(then.keys() - now.keys())}


def _same_model(a: Approval, ident: Identity) -> bool:
    m = a.model
    if ident.repo_id and m.get("repo_id"):
        return bool(m["repo_id"] == ident.repo_id)
    return bool(ident.root) and ident.root in (m.get("root"), m.get("audit_target"))


def check(store: Store, target: str, *, at: datetime | None = None, endpoint: str = "") -> CheckOutcome:
    at = at or datetime.now(UTC)
    ident = identify(target, endpoint)
    every = approvals(store)
    matches = [a for a in every if a.entry.manifest_digest == ident.manifest_digest]
    for a in reversed(matches):
        if a.status(at) == "active":
            until = f" until {a.expires_at.isoformat()}" if a.expires_at else ""
            return CheckOutcome(True, f"approved: approval {a.seq} by {a.data['approval']['by']}{until}",
                                target, ident.manifest_digest, a.to_dict(at))
    if matches:
        a = matches[-1]
        if a.status(at) == "revoked":
            rev = a.revocation or {}
            why = f"revoked: approval {a.seq} was revoked by {rev.get('by')} ({rev.get('reason')})"
        else:
            why = f"expired: approval {a.seq} expired on {a.expires_at.isoformat() if a.expires_at else '?'}"
        return CheckOutcome(False, why, target, ident.manifest_digest, a.to_dict(at))
    same = [a for a in every if _same_model(a, ident)]
    if same:
        a = same[-1]
        changed = _changes(a.model, ident.files)
        listed = "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in changed.items() if paths)
        return CheckOutcome(False, f"changed files since approval {a.seq}: {listed or 'manifest differs'}",
                            target, ident.manifest_digest, a.to_dict(at), changed)
    return CheckOutcome(False, f"no approval for this model (manifest sha256 {ident.manifest_digest})",
                        target, ident.manifest_digest)


@record(frozen=True)
class Reaudit:
    approval: int
    label: str
    before: str
    after: str                     # verdict today, or "error"
    still_passes: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"approval": self.approval, "model": self.label, "verdict_then": self.before, "verdict_now": self.after,
                "still_passes": self.still_passes, "reason": self.reason}


def reaudit(store: Store, *, policy_source: str = "", at: datetime | None = None) -> list[Reaudit]:
    """Audit every active approval's model again with today's rules; say which no longer pass."""
    from auditor.pipeline import audit
    at = at or datetime.now(UTC)
    out = []
    for a in approvals(store):
        if a.status(at) != "active":
            continue
        m, then = a.model, a.data.get("audit", {})
        options = Options(policy=policy_source or then.get("policy_source") or then.get("policy", "default"),
                          endpoint=m.get("endpoint", ""))
        try:
            result = audit(m["audit_target"], options)
        except AuditorError as exc:
            out.append(Reaudit(a.seq, a.label(), then.get("verdict", ""), "error", False, str(exc)))
            continue
        now_digest = manifest_digest(result.files)
        if now_digest != a.entry.manifest_digest:
            changed = _changes(m, {f.path: (f.size, f.sha256) for f in result.files})
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in changed.items() if v)
            out.append(Reaudit(a.seq, a.label(), then.get("verdict", ""), result.verdict.decision, False,
                               f"files changed since the approval ({listed})"))
        elif result.verdict.decision == "fail":
            out.append(Reaudit(a.seq, a.label(), then.get("verdict", ""), "fail", False,
                               "; ".join(result.verdict.reasons[:5]) or "fails"))
        else:
            out.append(Reaudit(a.seq, a.label(), then.get("verdict", ""), result.verdict.decision, True, ""))
    return out
