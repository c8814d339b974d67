"""The canonical JSON report (schema auditor.report/v1, documented in README.md).

Every other format can be re-rendered from it: `from_dict(to_dict(r))` gives back an equal result.
Keys are only ever added, never renamed.

`tool.rules` is rules.digest() of the rules the report was rendered with (in the process that audited).
`digest` is the report's own digest: "sha256:" + SHA-256 of the canonical JSON (keys sorted, no spaces,
UTF-8) of the report without its `digest` key. `verify_digest()` recomputes it, so an edit is detected.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, TypeVar

from auditor import record as records
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


PRETTY_LIMIT = 64 * 1024   # a bigger value (facts at 100k files) has one line per member: json's indenting is pure Python


def _dump(value: Any, indent: str) -> str:
    compact = _ROW(value)
    if len(compact) > PRETTY_LIMIT and isinstance(value, dict) and value:
        members = (f'{indent}  {json.dumps(str(k), ensure_ascii=False)}: {_ROW(v)}' for k, v in value.items())
        return _escape_surrogates("{\n" + ",\n".join(members) + f"\n{indent}}}")
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _escape_surrogates(text.replace("\n", "\n" + indent) if indent else text)


_FILE_FIELDS = tuple(f.name for f in records.fields(FileRecord))
_FINDING_FIELDS = tuple(f.name for f in records.fields(Finding))


def _file_row(f: FileRecord) -> dict[str, Any]:
    """FileRecord.to_dict() without asdict()'s deep copy (every field is a str or an int)."""
    return {name: getattr(f, name) for name in _FILE_FIELDS}


def _finding_row(f: Finding) -> dict[str, Any]:
    """Finding.to_dict(), field by field."""
    row = {name: getattr(f, name) for name in _FINDING_FIELDS}
    row["severity"] = f.severity.label
    row["references"] = list(f.references)
    return row


def _parts(result: AuditResult) -> tuple[dict[str, Any], dict[str, Iterator[Any]], dict[str, Any]]:
    head: dict[str, Any] = {"schema": SCHEMA, "tool": {"name": "auditor", "version": result.tool_version,
                                                       "rules": rules.digest()},
                            "target": _target(result), "started_at": result.started_at, "snapshot": _snapshot(result)}
    rows: dict[str, Iterator[Any]] = {"files": map(_file_row, result.files),
                                      "findings": map(_finding_row, result.findings)}
    tail: dict[str, Any] = {"verdict": result.verdict.to_dict(), "claims": [c.to_dict() for c in result.claims],
                            "facts": result.facts, "timings": result.timings}
    return head, rows, tail


# made once: json.dumps() with any option builds a new encoder per call (a third of a row's time)
_ROW = json.JSONEncoder(ensure_ascii=False, default=str, separators=(", ", ": ")).encode
_ROW_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def iter_render(result: AuditResult) -> Iterator[str]:
    """The report in pieces, one file or finding at a time: memory stays flat whatever the repo size.
    The digest is hashed in the same pass (each row's canonical form as the row is written), written last."""
    head, rows, tail = _parts(result)
    fixed = {**head, **tail}
    order = sorted([*fixed, *rows])
    first_row, last_row = order.index(min(rows)), order.index(max(rows))
    if order[first_row:last_row + 1] != sorted(rows):     # the rows must sit together in the canonical order
        raise AssertionError("row keys are not contiguous in the canonical key order")
    h = hashlib.sha256()

    def hash_keys(keys: list[str], opening: bool) -> None:
        for n, key in enumerate(keys):
            h.update((("{" if opening and n == 0 else ",") + json.dumps(key, ensure_ascii=False) + ":"
                      + _canonical(fixed[key])).encode("utf-8", "surrogatepass"))
    hash_keys(order[:first_row], True)
    yield "{\n"
    for key, value in head.items():
        yield f'  "{key}": {_dump(value, "  ")},\n'
    for n, (key, items) in enumerate(sorted(rows.items())):
        h.update(("{" if n == 0 and first_row == 0 else ",").encode() + json.dumps(key).encode() + b":[")
        yield f'  "{key}": ['
        first = True
        for row in items:
            # one line per file or finding: the C encoder, and a diff shows which one changed
            yield ("\n    " if first else ",\n    ") + _escape_surrogates(_ROW(row))
            h.update((("" if first else ",") + _ROW_CANONICAL(row)).encode("utf-8", "surrogatepass"))
            first = False
        h.update(b"]")
        yield ("]" if first else "\n  ]") + ",\n"
    hash_keys(order[last_row + 1:], False)
    h.update(b"}")
    for key, value in tail.items():
        yield f'  "{key}": {_dump(value, "  ")},\n'
    yield f'  "digest": {json.dumps("sha256:" + h.hexdigest())}\n'
    yield "}\n"


def render(result: AuditResult) -> str:
    return "".join(iter_render(result))


def _known(cls: type[T], data: dict[str, Any], **override: Any) -> T:
    """Build cls from the keys it knows: a report from a newer version (with added keys) still loads."""
    names = _field_names(cls)   # type: ignore[arg-type]  # a dataclass type is hashable
    return cls(**{k: v for k, v in data.items() if k in names}, **override)


@functools.cache
def _field_names(cls: Any) -> frozenset[str]:
    return frozenset(f.name for f in records.fields(cls))


def _file(data: Any) -> FileRecord:
    return _known(FileRecord, _mapping(data))


def _finding(data: Any) -> Finding:
    f = _mapping(data)
    return _known(Finding, {k: v for k, v in f.items() if k not in ("severity", "references")},
                  severity=Severity.parse(f["severity"]), references=tuple(f.get("references", ())))


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, found {type(value).__name__}")
    return value


def from_dict(data: dict[str, Any]) -> AuditResult:
    data = _mapping(data)
    _check_schema(data)
    return _result(data, tuple(map(_file, data["files"])), tuple(map(_finding, data["findings"])))


def from_file(fh: BinaryIO) -> AuditResult:
    """from_dict(json.load(fh)) without the whole dict tree: each file and finding becomes its record as it
    is read (json_stream), so loading 100k files costs the records, not the JSON objects."""
    from auditor.reports import json_stream
    files: list[FileRecord] = []
    findings: list[Finding] = []
    data = json_stream.read_object(fh, {"files": lambda d: files.append(_file(d)),
                                        "findings": lambda d: findings.append(_finding(d))})
    _check_schema(data)
    if not isinstance(data.get("files"), int) or not isinstance(data.get("findings"), int):
        raise KeyError("files" if not isinstance(data.get("files"), int) else "findings")
    return _result(data, tuple(files), tuple(findings))


def _check_schema(data: dict[str, Any]) -> None:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not an auditor report (schema {data.get('schema')!r}, expected {SCHEMA!r})")


def _result(data: dict[str, Any], files: tuple[FileRecord, ...], findings: tuple[Finding, ...]) -> AuditResult:
    snap = {k: v for k, v in data["snapshot"].items() if k not in ("hosts_contacted", "ancestors")}
    snapshot = _known(Snapshot, snap, hosts_contacted=tuple(data["snapshot"].get("hosts_contacted", ())),
                      ancestors=tuple(_known(Ancestor, a) for a in data["snapshot"].get("ancestors", ())))
    v = data["verdict"]
    return AuditResult(
        target=data["target"], snapshot=snapshot, files=files, findings=findings,
        verdict=Verdict(decision=v["decision"], policy=v["policy"], reasons=tuple(v.get("reasons", ())),
                        counts=dict(v.get("counts", {}))),
        claims=tuple(Claim(id=c["id"], title=c["title"], status=ClaimStatus(c["status"]), reason=c["reason"],
                           evidence=tuple(c.get("evidence", ()))) for c in data["claims"]),
        facts=data.get("facts", {}), timings=data.get("timings", {}),
        tool_version=data["tool"]["version"], started_at=data.get("started_at", ""))
