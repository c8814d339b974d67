"""The canonical JSON report (schema auditor.report/v1, documented in README.md).

Every other format can be re-rendered from it: `from_dict(to_dict(r))` gives back an equal result.
Keys are only ever added, never renamed.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from auditor.model import Ancestor, AuditResult, Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot, Verdict

SCHEMA = "auditor.report/v1"
EXTENSION = ".json"

T = TypeVar("T")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LOCAL_KINDS = ("local-folder", "local-file", "hf-cache")


def _snapshot(result: AuditResult) -> dict[str, Any]:
    """The snapshot as shared: local paths with the user's home shown as `~`."""
    from auditor.reports.view import shareable_path
    snap = result.snapshot.to_dict()
    snap["root"] = shareable_path(snap["root"])
    if snap.get("kind") in _LOCAL_KINDS:
        snap["target"] = shareable_path(snap["target"])
    facts = snap.get("facts")
    if isinstance(facts, dict) and isinstance(facts.get("link_root"), str):
        snap["facts"] = {**facts, "link_root": shareable_path(facts["link_root"])}
    return snap


def _target(result: AuditResult) -> str:
    from auditor.reports.view import shareable_path
    return shareable_path(result.target) if result.snapshot.kind in _LOCAL_KINDS else result.target


def to_dict(result: AuditResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "auditor", "version": result.tool_version},
        "target": _target(result),
        "started_at": result.started_at,
        "snapshot": _snapshot(result),
        "files": [f.to_dict() for f in result.files],
        "findings": [f.to_dict() for f in result.findings],
        "verdict": result.verdict.to_dict(),
        "claims": [c.to_dict() for c in result.claims],
        "facts": result.facts,
        "timings": result.timings,
    }


def _escape_surrogates(text: str) -> str:
    """A file name that is not UTF-8 reaches us with surrogate escapes; JSON keeps it as \\udcXX, which
    round-trips losslessly through json.loads, and the text stays valid UTF-8."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _dump(value: Any, indent: str) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _escape_surrogates(text.replace("\n", "\n" + indent) if indent else text)


def iter_render(result: AuditResult) -> Iterator[str]:
    """The report in pieces, one file or finding at a time: memory stays flat whatever the repo size."""
    head: dict[str, Any] = {"schema": SCHEMA, "tool": {"name": "auditor", "version": result.tool_version},
            "target": _target(result), "started_at": result.started_at, "snapshot": _snapshot(result)}
    yield "{\n"
    for key, value in head.items():
        yield f'  "{key}": {_dump(value, "  ")},\n'
    for key, rows in (("files", (f.to_dict() for f in result.files)),
                      ("findings", (f.to_dict() for f in result.findings))):
        yield f'  "{key}": ['
        first = True
        for row in rows:
            # one line per file or finding: the C encoder, and a diff shows which one changed
            yield ("\n    " if first else ",\n    ") + _escape_surrogates(
                json.dumps(row, ensure_ascii=False, default=str, separators=(", ", ": ")))
            first = False
        yield ("]" if first else "\n  ]") + ",\n"
    tail: dict[str, Any] = {"verdict": result.verdict.to_dict(), "claims": [c.to_dict() for c in result.claims],
            "facts": result.facts, "timings": result.timings}
    for i, (key, value) in enumerate(tail.items()):
        yield f'  "{key}": {_dump(value, "  ")}' + (",\n" if i < len(tail) - 1 else "\n")
    yield "}\n"


def render(result: AuditResult) -> str:
    return "".join(iter_render(result))


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
