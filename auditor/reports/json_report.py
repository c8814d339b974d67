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
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from auditor import rules
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
    head, rows, tail = _parts(result)
    return {**head, **{key: list(items) for key, items in rows.items()}, **tail}


def _canonical(value: Any) -> str:
    """Keys sorted, no spaces; through JSON first so a value and the same value read back agree."""
    plain = json.loads(json.dumps(value, default=str))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(pieces: Iterator[str]) -> str:
    h = hashlib.sha256()
    for piece in pieces:
        h.update(piece.encode("utf-8", "surrogatepass"))   # non-UTF-8 file names arrive as lone surrogates
    return "sha256:" + h.hexdigest()


def _canonical_pieces(items: Iterator[tuple[str, Any]], lists: frozenset[str] = frozenset()) -> Iterator[str]:
    """The canonical JSON of a mapping, piece by piece; the keys in `lists` are written item by item."""
    yield "{"
    for n, (key, value) in enumerate(sorted(items, key=lambda kv: kv[0])):
        yield ("," if n else "") + json.dumps(key, ensure_ascii=False) + ":"
        if key in lists:
            yield "[" + ",".join(_canonical(item) for item in value) + "]"
        else:
            yield _canonical(value)
    yield "}"


def digest(data: dict[str, Any]) -> str:
    """The report's own digest (see the module docstring); the `digest` key itself is left out."""
    return _sha256(_canonical_pieces((k, v) for k, v in data.items() if k != "digest"))


def verify_digest(data: dict[str, Any]) -> bool:
    """True when the report carries a digest and it matches its content."""
    return isinstance(data.get("digest"), str) and data["digest"] == digest(data)


def _escape_surrogates(text: str) -> str:
    """A file name that is not UTF-8 reaches us with surrogate escapes; JSON keeps it as \\udcXX, which
    round-trips losslessly through json.loads, and the text stays valid UTF-8."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _dump(value: Any, indent: str) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _escape_surrogates(text.replace("\n", "\n" + indent) if indent else text)


def _parts(result: AuditResult) -> tuple[dict[str, Any], dict[str, Iterator[Any]], dict[str, Any]]:
    head: dict[str, Any] = {"schema": SCHEMA, "tool": {"name": "auditor", "version": result.tool_version,
                                                       "rules": rules.digest()},
                            "target": _target(result), "started_at": result.started_at, "snapshot": _snapshot(result)}
    rows: dict[str, Iterator[Any]] = {"files": (f.to_dict() for f in result.files),
                                      "findings": (f.to_dict() for f in result.findings)}
    tail: dict[str, Any] = {"verdict": result.verdict.to_dict(), "claims": [c.to_dict() for c in result.claims],
                            "facts": result.facts, "timings": result.timings}
    return head, rows, tail


def iter_render(result: AuditResult) -> Iterator[str]:
    """The report in pieces, one file or finding at a time: memory stays flat whatever the repo size.
    The digest is computed over the same values, also item by item, and written last."""
    head, rows, tail = _parts(result)
    yield "{\n"
    for key, value in head.items():
        yield f'  "{key}": {_dump(value, "  ")},\n'
    for key, items in rows.items():
        yield f'  "{key}": ['
        first = True
        for row in items:
            # one line per file or finding: the C encoder, and a diff shows which one changed
            yield ("\n    " if first else ",\n    ") + _escape_surrogates(
                json.dumps(row, ensure_ascii=False, default=str, separators=(", ", ": ")))
            first = False
        yield ("]" if first else "\n  ]") + ",\n"
    for key, value in tail.items():
        yield f'  "{key}": {_dump(value, "  ")},\n'
    head, rows, tail = _parts(result)      # the row generators again, for the digest
    pieces = _canonical_pieces(iter({**head, **rows, **tail}.items()), frozenset(rows))
    yield f'  "digest": {json.dumps(_sha256(pieces))}\n'
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
