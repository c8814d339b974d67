"""Waivers: reviewed, expiring exceptions for findings (auditor-waivers.yaml or a policy's `waivers:`).

A waiver names a rule (id or glob) and may narrow its scope to a repo id, a revision and a file glob.
A matching waiver that has not expired marks the finding waived (it stays in every report with the
reason); a matching waiver past its expiry date leaves the finding active and adds WAIVER-EXPIRED.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from auditor import rules
from auditor.errors import AuditorError
from auditor.model import Finding, Snapshot
from auditor.record import record, replace

DEFAULT_FILE = "auditor-waivers.yaml"


@record(frozen=True)
class Waiver:
    rule: str
    reason: str
    owner: str
    expires: dt.date
    repo: str = ""
    revision: str = ""
    file: str = ""
    source: str = ""              # file (and entry number) it came from

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def in_scope(self, snapshot: Snapshot) -> bool:
        if self.repo and not any(fnmatchcase(name, self.repo) for name in (snapshot.repo_id, snapshot.target) if name):
            return False
        if self.revision:
            revisions = [r for r in (snapshot.resolved_revision, snapshot.requested_revision) if r]
            if not any(r == self.revision or r.startswith(self.revision) for r in revisions):
                return False
        return True

    def matches(self, finding: Finding, snapshot: Snapshot) -> bool:
        if not fnmatchcase(finding.rule, self.rule):
            return False
        if self.file and not (finding.file and fnmatchcase(finding.file, self.file)):
            return False
        return self.in_scope(snapshot)

    @property
    def label(self) -> str:
        return f"{self.reason} ({self.owner}, until {self.expires.isoformat()})"

    def describe(self) -> str:
        scope = ", ".join(f"{k}={v}" for k, v in (("repo", self.repo), ("revision", self.revision),
                                                  ("file", self.file)) if v)
        return f"{self.rule}" + (f" [{scope}]" if scope else "") + f": {self.label}"


@functools.cache
def _entry_validator() -> Any:
    schema = rules.load("waivers.schema.yaml")
    return rules.validator(dict(schema["$defs"]["waiver"]), formats=True)


def parse(entries: Any, source: str) -> tuple[Waiver, ...]:
    """Validate a list of waiver mappings; a bad one is a one-line AuditorError naming it."""
    if isinstance(entries, dict) and set(entries) == {"waivers"}:
        entries = entries["waivers"]
    if entries is None or entries == []:
        return ()
    if not isinstance(entries, list):
        raise AuditorError(f"waivers {source}: expected a list of waivers (or a mapping with `waivers:`)")
    validator = _entry_validator()
    waivers = []
    for number, raw in enumerate(entries, 1):
        where = f"waivers {source}: entry {number}"
        if not isinstance(raw, dict):
            raise AuditorError(f"{where}: expected a mapping with rule, reason, owner, expires")
        entry = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in raw.items()}
        error = next(iter(sorted(validator.iter_errors(entry), key=lambda e: list(e.path))), None)
        if error is not None:
            raise AuditorError(f"{where}: {_explain(error)}")
        check_rule_pattern(entry["rule"], where)
        try:
            expires = dt.date.fromisoformat(entry["expires"])
        except ValueError:
            raise AuditorError(f"{where}: expires {entry['expires']!r} is not a date (YYYY-MM-DD)") from None
        waivers.append(Waiver(rule=entry["rule"], reason=" ".join(entry["reason"].split()), owner=entry["owner"],
                              expires=expires, repo=entry.get("repo", ""), revision=entry.get("revision", ""),
                              file=entry.get("file", ""), source=f"{source}#{number}"))
    return tuple(waivers)


def _explain(error: Any) -> str:
    """One line from a jsonschema error: the key path and what is wrong with it."""
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "additionalProperties":
        return f"unknown key: {error.message.split('(')[-1].rstrip(')')}"
    return f"{key or 'value'}: {error.message}"


def check_rule_pattern(pattern: str, where: str) -> None:
    """A rule id or glob that names no documented rule is a typo that would silently match nothing."""
    catalog = rules.catalog()
    if pattern in catalog or any(fnmatchcase(rule, pattern) for rule in catalog):
        return
    raise AuditorError(f"{where}: unknown rule id {pattern!r} (see `auditor rules`)")


def load_file(path: Path) -> tuple[Waiver, ...]:
    if not path.is_file():
        raise AuditorError(f"waivers file not found: {path}")
    return parse(read_yaml(path, "waivers"), str(path))


def read_yaml(path: Path, what: str) -> Any:
    """rules.load_file, plus the ValueError PyYAML raises for an impossible date such as 2030-02-31."""
    try:
        return rules.load_file(path)
    except ValueError as exc:
        raise AuditorError(f"{what} {path}: {exc} (dates are YYYY-MM-DD)") from None


def discover(explicit: str, cwd: Path | None = None) -> tuple[Waiver, ...]:
    """The waivers file given, else ./auditor-waivers.yaml when it exists, else none."""
    if explicit:
        return load_file(Path(explicit))
    default = (cwd or Path.cwd()) / DEFAULT_FILE
    return load_file(default) if default.is_file() else ()


@record
class Outcome:
    findings: list[Finding]               # the input, waived ones replaced
    expired: list[Finding]                # WAIVER-EXPIRED findings to add
    used: set[Waiver]                     # waivers that matched something (expired ones included)


def apply(findings: Iterable[Finding], waivers: Iterable[Waiver], snapshot: Snapshot,
          today: dt.date | None = None) -> Outcome:
    """Waive what an unexpired waiver matches; report each expired waiver that still matches a finding."""
    today = today or dt.date.today()
    out = Outcome(findings=[], expired=[], used=set())
    expired_hits: dict[Waiver, list[Finding]] = {}
    matcher = _Matcher([w for w in waivers if w.in_scope(snapshot)])
    for finding in findings:
        if finding.waived or finding.rule.startswith("WAIVER-"):
            out.findings.append(finding)
            continue
        matching = matcher.matching(finding)
        out.used.update(matching)
        live = [w for w in matching if not w.expired(today)]
        if live:
            chosen = max(live, key=lambda w: w.expires)
            out.findings.append(replace(finding, waived=True, waiver=chosen.label))
            continue
        for w in matching:
            expired_hits.setdefault(w, []).append(finding)
        out.findings.append(finding)
    out.expired = [_expired_finding(waiver, hits) for waiver, hits in expired_hits.items()]
    return out


class _Matcher:
    """Which waivers match a finding; few distinct rule ids, so each rule glob is matched once per id."""

    def __init__(self, waivers: list[Waiver]) -> None:
        self._waivers = waivers
        self._by_rule: dict[str, list[Waiver]] = {}
        self._by_key: dict[tuple[str, str], list[Waiver]] = {}

    def matching(self, finding: Finding) -> list[Waiver]:
        key = (finding.rule, finding.file)
        if key not in self._by_key:
            if finding.rule not in self._by_rule:
                self._by_rule[finding.rule] = [w for w in self._waivers if fnmatchcase(finding.rule, w.rule)]
            self._by_key[key] = [w for w in self._by_rule[finding.rule]
                                 if not w.file or (finding.file and fnmatchcase(finding.file, w.file))]
        return self._by_key[key]


def _expired_finding(waiver: Waiver, hits: list[Finding]) -> Finding:
    first = hits[0]
    more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
    return rules.finding(
        "WAIVER-EXPIRED", file=first.file, location=waiver.source, scanner="waivers",
        evidence=f"waiver for {waiver.rule} expired on {waiver.expires.isoformat()} (owner {waiver.owner}: "
                 f"{waiver.reason}); it matched {first.rule}{' in ' + first.file if first.file else ''}{more}")


def unused(waivers: Iterable[Waiver], findings_by_snapshot: Iterable[tuple[Snapshot, Iterable[Finding]]]) -> list[Waiver]:
    """Waivers that match no finding in any of the given audits."""
    remaining = list(waivers)
    for snapshot, findings in findings_by_snapshot:
        findings = list(findings)
        remaining = [w for w in remaining if not any(w.matches(f, snapshot) for f in findings)]
    return remaining
