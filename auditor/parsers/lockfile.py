"""The auditor lock file format: read and validate it, and compute drift between a lock and files.

Pure: no findings, no policy (the integrity scanner turns drift into LOCK-* findings; the `lock`
command builds and writes locks, auditor/workflows/lockfile.py).

Format (JSON, `auditor-lock` version 1):
  {"lockfile": "auditor-lock", "version": 1, "created_at", "tool_version", "target", "repo_id",
   "endpoint", "requested_revision", "commit", "files": [{"path", "size", "sha256"}],
   "audit": {"digest": "sha256:<hex of the canonical JSON report>", "verdict", "findings": {severity: n}}}
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError
from auditor.record import record

KIND = "auditor-lock"
VERSION = 1
MAX_LOCK_BYTES = 64 * 1024 * 1024


@record(frozen=True)
class Drift:
    kind: str               # changed | missing | extra
    path: str
    locked: dict[str, Any] | None   # the lock's {path, size, sha256}, None for an extra file
    now: str                # what the file is now ("sha256 <hex>, N bytes" or its read error)


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
    except (ValueError, RecursionError) as exc:
        raise AuditorError(f"{path}: not a lock file (invalid JSON: {exc})") from None
    return validate(data, str(path))


def validate(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("lockfile") != KIND:
        raise AuditorError(f"{where}: not an auditor lock file")
    if data.get("version") != VERSION:
        raise AuditorError(f"{where}: lock file version {data.get('version')!r} is not supported (expected {VERSION})")
    files = data.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
            and isinstance(f.get("size"), int) for f in files):
        raise AuditorError(f"{where}: malformed lock file (files must be a list of {{path, size, sha256}})")
    return data


def drift(lock: dict[str, Any], files: Iterable[Any], ignore: frozenset[str] | set[str] = frozenset()) -> list[Drift]:
    """Files changed, missing or extra compared with the lock (`files`: records with path, size, sha256, error)."""
    locked = {f["path"]: f for f in lock["files"]}
    found = {f.path: f for f in files if f.path not in ignore}
    out: list[Drift] = []
    for path in sorted(locked):
        want, rec = locked[path], found.get(path)
        if rec is None:
            out.append(Drift("missing", path, want, ""))
        elif rec.error or rec.sha256 != want["sha256"] or rec.size != want["size"]:
            out.append(Drift("changed", path, want, rec.error or f"sha256 {rec.sha256}, {rec.size} bytes"))
    for path in sorted(set(found) - set(locked)):
        out.append(Drift("extra", path, None, f"sha256 {found[path].sha256}, {found[path].size} bytes"))
    return out
