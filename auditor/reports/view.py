"""What every rendering reads from one AuditResult, in one place: neutralised text, facts that may be
missing, the lineage, the findings in order. Reports compute nothing new; they only select and escape.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from auditor.model import AuditResult, Finding, Severity
from auditor.record import record

NOT_ASSESSED = "not assessed"

# Characters that reorder or hide text (Trojan Source, CVE-2021-42574) or are invisible.
_BIDI_AND_INVISIBLE = set("\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2060\u2066\u2067\u2068\u2069\ufeff")
_LINE = re.compile(r"\bline\s+(\d+)", re.IGNORECASE)


def clean(text: Any, limit: int = 0, *, keep_newlines: bool = True) -> str:
    """Untrusted text -> plain printable text: control, bidi-override and invisible characters become a
    visible <U+XXXX>; format-specific escaping is each renderer's job on top of this."""
    text = str(text)
    if text.isprintable():      # the common case, in C: no control, format (bidi), private or unassigned character
        result = text if keep_newlines else " ".join(text.split())
        return result[:limit] + "…" if limit and len(result) > limit else result
    out = []
    for ch in text:
        if ch in "\n\t" and keep_newlines:
            out.append(ch)
        elif ch in _BIDI_AND_INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    result = "".join(out)
    if not keep_newlines:
        result = " ".join(result.split())
    if limit and len(result) > limit:
        result = result[:limit] + "…"
    return result


def line_of(location: str) -> int | None:
    """`line 12` or `..., line 12:4` -> 12; binary locations (byte offsets, members) -> None."""
    match = _LINE.search(location or "")
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def started(result: AuditResult) -> datetime:
    """When the audit started, as an aware datetime (now, for a result that lost its timestamp)."""
    try:
        stamp = datetime.fromisoformat(result.started_at)
    except ValueError:
        return datetime.now(UTC)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def model_name(result: AuditResult) -> str:
    snap = result.snapshot
    if snap.repo_id:
        return snap.repo_id
    name = PurePosixPath(snap.single_file or snap.root.replace("\\", "/").rstrip("/")).name
    return name or result.target


def revision(result: AuditResult) -> str:
    snap = result.snapshot
    return snap.resolved_revision or snap.requested_revision or ""


def provenance(result: AuditResult) -> dict[str, Any]:
    value = result.facts.get("provenance")
    return value if isinstance(value, dict) else {}


def license_facts(result: AuditResult) -> dict[str, Any]:
    value = result.facts.get("license")
    return value if isinstance(value, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def publisher(result: AuditResult) -> dict[str, Any]:
    return _dict(provenance(result).get("publisher"))


def effective_origin(result: AuditResult) -> dict[str, Any]:
    return _dict(provenance(result).get("effective_origin"))


def signature(result: AuditResult) -> dict[str, Any]:
    return _dict(provenance(result).get("signature"))


def model_license(result: AuditResult) -> dict[str, Any]:
    return _dict(license_facts(result).get("model"))


def obligations(result: AuditResult) -> list[dict[str, Any]]:
    return [o for o in _list(license_facts(result).get("obligations")) if isinstance(o, dict)]


def declared_license(result: AuditResult) -> tuple[str, str]:
    """(SPDX id, name) of the model's license as the license scanner identified it; when it could not,
    the name the card declares (`license_name`, else `license` unless it is just "other")."""
    lic = model_license(result)
    spdx, name = str(lic.get("spdx") or ""), str(lic.get("name") or lic.get("id") or "")
    if spdx or name:
        return spdx, name
    declared = {str(src.get("kind")): str(src.get("value") or "") for src in _list(lic.get("sources"))
                if isinstance(src, dict)}
    fallback = declared.get("card-license_name") or declared.get("card-license", "")
    return "", "" if fallback.lower() in ("other", "unknown") else fallback


def license_label(result: AuditResult) -> str:
    if not license_facts(result):
        return NOT_ASSESSED
    spdx, name = declared_license(result)
    identified = model_license(result).get("spdx") or model_license(result).get("name") or model_license(result).get("id")
    if identified:
        return spdx or name
    return f"unrecognised (declared as {name})" if name else "unidentified"


def law_and_venue(result: AuditResult) -> tuple[str, str]:
    """Governing law and venue: the license scanner's summary fields, else its obligations of those terms."""
    facts = license_facts(result)
    terms = {str(o.get("term")): str(o.get("summary") or "") for o in obligations(result)}
    law = str(facts.get("governing_law") or terms.get("governing_law") or "not stated")
    venue = str(facts.get("venue") or terms.get("venue") or "not stated")
    return law, venue


@record(frozen=True)
class LineageEntry:
    repo_id: str
    relation: str
    depth: int
    org: str = ""
    entity: str = ""
    country: str = ""
    license: str = ""
    commit: str = ""
    error: str = ""


def lineage(result: AuditResult) -> list[LineageEntry]:
    """Parent first, root last: the provenance scanner's view when it ran, else the source's ancestors."""
    licenses = {str(e.get("repo_id")): str(e.get("license_id") or ("" if e.get("error") else e.get("name")) or "")
                for e in _list(license_facts(result).get("lineage")) if isinstance(e, dict)}
    commits = {a.repo_id: a.commit for a in result.snapshot.ancestors}
    entries = []
    for e in _list(provenance(result).get("lineage")):
        if not isinstance(e, dict) or not e.get("repo_id"):
            continue
        rid = str(e["repo_id"])
        entries.append(LineageEntry(
            repo_id=rid, relation=str(e.get("relation") or ""), depth=_int(e.get("depth"), 1),
            org=str(e.get("org") or ""), entity=str(e.get("entity") or ""), country=str(e.get("country") or ""),
            license=str(e.get("license") or licenses.get(rid, "")), commit=commits.get(rid, ""),
            error=str(e.get("error") or "")))
    if entries:
        return entries
    return [LineageEntry(repo_id=a.repo_id, relation=a.relation, depth=a.depth, commit=a.commit,
                         license=licenses.get(a.repo_id, ""), error=a.error)
            for a in result.snapshot.ancestors]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def active(result: AuditResult) -> list[Finding]:
    return [f for f in result.findings if not f.waived]


def waived(result: AuditResult) -> list[Finding]:
    return [f for f in result.findings if f.waived]


def ordered(findings: list[Finding] | tuple[Finding, ...]) -> list[Finding]:
    return sorted(findings, key=Finding.order)


def counts(result: AuditResult) -> dict[str, int]:
    tally = {s.label: 0 for s in reversed(Severity)}
    for f in active(result):
        tally[f.severity.label] += 1
    return tally


def where(f: Finding) -> str:
    return f.file + (f" @ {f.location}" if f.location else "")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def origin_line(entity: dict[str, Any], assessed: bool = False) -> str:
    """`Org (entity), CC` from a {org, entity, country} dict; when empty, "unknown" if the check ran
    (`assessed`), else NOT_ASSESSED."""
    org, ent, country = (str(entity.get(k) or "") for k in ("org", "entity", "country"))
    text = org + (f" ({ent})" if ent and ent != org else "")
    text = (text + (f", {country}" if country else "")).strip(", ")
    return text or ("unknown" if assessed else NOT_ASSESSED)


def publisher_line(result: AuditResult) -> str:
    return origin_line(publisher(result), assessed=bool(provenance(result)))


def effective_origin_line(result: AuditResult) -> str:
    return origin_line(effective_origin(result), assessed=bool(provenance(result)))


@record(frozen=True)
class Issue:
    """Findings that look the same to a reader (one rule, title and file): one issue, several places."""
    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def locations(self) -> list[str]:
        return [f.location for f in self.findings if f.location]

    @property
    def evidence(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.findings:
            if f.evidence:
                seen.setdefault(f.evidence, None)
        return list(seen)


def issues(findings: list[Finding] | tuple[Finding, ...]) -> list[Issue]:
    """Group findings that differ only in location or evidence, most severe first (the finding order)."""
    groups: dict[tuple[str, int, str, str, bool], list[Finding]] = {}
    for f in ordered(findings):
        groups.setdefault((f.rule, int(f.severity), f.title, f.file, f.waived), []).append(f)
    return [Issue(tuple(group)) for group in groups.values()]


def issue_counts(result: AuditResult) -> dict[str, int]:
    tally = {s.label: 0 for s in reversed(Severity)}
    for issue in issues(active(result)):
        tally[issue.first.severity.label] += 1
    return tally


def counts_line(result: AuditResult) -> str:
    """`3 critical, 2 high` by issue, with the finding count when repeats were grouped."""
    by_issue, by_finding = issue_counts(result), counts(result)
    parts = []
    for label, n in by_issue.items():
        if n:
            parts.append(f"{n} {label}" + (f" ({by_finding[label]} findings)" if by_finding[label] != n else ""))
    return ", ".join(parts) or "no findings"


def shareable_path(path: str) -> str:
    """A local path as it may go into a shared report: the user's home folder shown as `~`."""
    import os
    home = os.path.expanduser("~").rstrip("/")
    if home and home != "/" and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home):]
    return path
