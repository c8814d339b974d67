"""What a batch is made of: the targets (from a list file or a folder of models), their output names,
and whether each one's last result is still current (same files, tool version, rules and policy).

A list file has one target per line: `TARGET [POLICY]` (shell quoting for paths with spaces), `#`
comments and blank lines ignored, relative paths taken from the list file's folder. A folder's
subfolders (not hidden ones) are the targets.

A target's fingerprint is SHA-256 over its files' relative path, size and mtime (symlinks followed,
as the audit does for a cache snapshot); a Hub id pinned to a 40-hex commit is its own fingerprint;
an unpinned Hub id has none and is always audited again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

from auditor import __version__, rules, sources
from auditor.errors import AuditorError
from auditor.record import asdict, record
from auditor.reports import json_report

STATE_DIR = ".auditor-batch"
_PINNED = re.compile(r"@[0-9a-f]{40}$")
MAX_LIST_BYTES = 64 * 1024 * 1024


@record(frozen=True)
class Job:
    """One target to audit; small and picklable (sent to pool workers and Ray tasks)."""
    name: str                       # output file stem in the batch folder, unique
    target: str
    policy: str = "default"
    formats: tuple[str, ...] = ("json",)
    endpoint: str = ""
    engines: tuple[str, ...] = ("auditor", "modelscan")
    line: int = 0                   # where it came from in the list file


def _slug(target: str) -> str:
    base = target.rstrip("/").removeprefix("hf://")
    tail = "--".join(Path(base).parts[-2:]) if sources.is_hub_target(target) else Path(base).name
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._") or "target"
    return f"{clean[:80]}-{hashlib.sha256(target.encode('utf-8')).hexdigest()[:8]}"


def _parse_line(text: str, where: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError as exc:
        raise AuditorError(f"{where}: {exc}") from None


def read_targets(source: str, *, policy: str = "default", formats: tuple[str, ...] = ("json",),
                 endpoint: str = "", engines: tuple[str, ...] = ("auditor", "modelscan")) -> list[Job]:
    path = Path(source).expanduser()
    pairs: list[tuple[str, str, int]] = []
    if path.is_dir():
        pairs = [(str(p), policy, 0) for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    elif path.is_file():
        if path.stat().st_size > MAX_LIST_BYTES:
            raise AuditorError(f"{source}: target list larger than {MAX_LIST_BYTES} bytes")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditorError(f"cannot read target list {source}: {exc}") from None
        for number, text in enumerate(lines, 1):
            words = _parse_line(text, f"{source} line {number}")
            if not words:
                continue
            if len(words) > 2:
                raise AuditorError(f"{source} line {number}: expected `TARGET [POLICY]`, got {len(words)} fields")
            target = words[0]
            beside = path.parent / target
            # local paths first: relative to the list file when that exists (org/name-shaped folders too)
            if not Path(target).expanduser().is_absolute() and (beside.exists() or not sources.is_hub_target(target)):
                target = str(beside)
            pairs.append((target, words[1] if len(words) == 2 else policy, number))
    else:
        raise AuditorError(f"no such target list or folder: {source}")
    if not pairs:
        raise AuditorError(f"{source}: no targets (a list file with one target per line, or a folder of models)")
    jobs, seen = [], set()
    for target, pol, number in pairs:
        key = (target, pol)
        if key in seen:
            continue
        seen.add(key)
        name = _slug(target) if pol == policy else _slug(f"{target} {pol}")
        jobs.append(Job(name=name, target=target, policy=pol, formats=formats, endpoint=endpoint,
                        engines=engines, line=number))
    return jobs


def fingerprint(target: str) -> str:
    """size+mtime+path of every file (see the module docstring); "" when there is none to trust."""
    if sources.is_hub_target(target):
        return f"hub:{target}" if _PINNED.search(target) else ""
    root = Path(target).expanduser()
    h = hashlib.sha256()
    try:
        if root.is_file():
            st = root.stat()
            h.update(f"{root.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            return h.hexdigest()
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                p = Path(folder) / name
                st = p.stat()
                h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError:
        return ""        # something unreadable: audit it again, and let the audit say what
    return h.hexdigest()


def policy_key(policy: str) -> str:
    """The policy as typed, plus its file's content hash when it is a file (an edit redoes the batch)."""
    p = Path(policy).expanduser()
    if p.is_file():
        return f"{policy}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
    return policy


def state_path(out: Path, job: Job) -> Path:
    return out / STATE_DIR / f"{job.name}.json"


def read_state(out: Path, job: Job) -> dict[str, Any] | None:
    try:
        data = json.loads(state_path(out, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def expected_state(job: Job, fp: str) -> dict[str, Any]:
    """What a current state must say; the outcome's fields are added when it is written."""
    return {"job": asdict(job), "fingerprint": fp, "tool_version": __version__, "rules_digest": rules.digest(),
            "policy_key": policy_key(job.policy)}


def is_current(out: Path, job: Job, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The stored state when the result on disk is current and intact; None when the job must run."""
    state = read_state(out, job)
    if state is None or state.get("status") != "audited" or not expected["fingerprint"]:
        return None
    for key in ("fingerprint", "tool_version", "rules_digest", "policy_key"):
        if state.get(key) != expected[key]:
            return None
    if state.get("job", {}).get("target") != job.target or not set(job.formats) <= set(state.get("outputs", {})):
        return None
    if not all((out / name).is_file() for name in state["outputs"].values()):
        return None
    try:
        report = json.loads((out / state["outputs"]["json"]).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return None
    return state if json_report.verify_digest(report) and report.get("digest") == state.get("result_digest") else None
