"""A local folder, a single file, or a model in the Hugging Face cache.

A cache snapshot (`.../models--org--name/snapshots/<sha>`) records the repo id and commit from the
path, and the publisher's hashes from the tree listing huggingface_hub recorded beside it
(`trees/<sha>.json`), else from the blob names its symlinks point at (the blob name is the file's
etag: the LFS sha256, or the git blob sha1 for small files).
"""
from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError
from auditor.model import Options, Snapshot

_CACHE_REPO = re.compile(r"^(models|datasets|spaces)--(.+)$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_TREE_BYTES = 256 * 1024 * 1024


def open_snapshot(target: str, options: Options) -> Snapshot:
    path = Path(target).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AuditorError(f"no such file or folder: {target}") from None
    except OSError as exc:
        raise AuditorError(f"cannot open {target}: {exc.strerror or exc}") from None
    path = path.resolve()
    now = datetime.now(UTC).isoformat(timespec="seconds")

    if not path.is_dir():
        if not path.is_file():
            raise AuditorError(f"not a regular file or folder: {target}")
        if not os.access(path, os.R_OK):
            raise AuditorError(f"cannot read {target}: permission denied")
        del st
        return Snapshot(root=str(path.parent), kind="local-file", target=target,
                        single_file=path.name, fetched_at=now)

    if not os.access(path, os.R_OK | os.X_OK):
        raise AuditorError(f"cannot read folder {target}: permission denied")

    cache = _cache_snapshot(path)
    if cache is not None:
        repo_root, snapshot_dir, repo_id, commit = cache
        tree = cache_tree(repo_root, commit) if commit else None
        publisher = tree if tree is not None else blob_hashes(snapshot_dir, repo_root)
        return Snapshot(root=str(snapshot_dir), kind="hf-cache", target=target, repo_id=repo_id,
                        resolved_revision=commit, fetched_at=now,
                        publisher_hashes=publisher, facts={"link_root": str(repo_root),
                                                           "cache_tree": tree is not None})
    return Snapshot(root=str(path), kind="local-folder", target=target, fetched_at=now)


def _cache_snapshot(path: Path) -> tuple[Path, Path, str, str] | None:
    """Recognise `models--org--name` itself (use refs/main) or one of its snapshots/<sha>."""
    if path.parent.name == "snapshots" and _CACHE_REPO.match(path.parent.parent.name):
        repo_root, snapshot_dir = path.parent.parent, path
    elif _CACHE_REPO.match(path.name) and (path / "snapshots").is_dir():
        repo_root = path
        ref = path / "refs" / "main"
        commit = ref.read_text(encoding="ascii", errors="replace").strip() if ref.is_file() else ""
        candidates = sorted(p for p in (path / "snapshots").iterdir() if p.is_dir())
        chosen = [p for p in candidates if p.name == commit] or candidates[-1:]
        if not chosen:
            raise AuditorError(f"{path} is a Hugging Face cache folder with no snapshot in it")
        snapshot_dir = chosen[0]
    else:
        return None
    match = _CACHE_REPO.match(repo_root.name)
    assert match is not None
    repo_id = match.group(2).replace("--", "/")
    commit = snapshot_dir.name if _HEX40.match(snapshot_dir.name) else ""
    return repo_root, snapshot_dir, repo_id, commit


def cache_tree(repo_root: Path, commit: str) -> dict[str, dict[str, Any]] | None:
    """The tree listing huggingface_hub recorded for `commit` (trees/<commit>.json): path -> publisher hash."""
    path = repo_root / "trees" / f"{commit}.json"
    try:
        if path.stat().st_size > MAX_TREE_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("format_version") == 1 else None
    if not isinstance(files, dict):
        return None
    hashes: dict[str, dict[str, Any]] = {}
    for rel, info in files.items():
        if not isinstance(info, dict) or not isinstance(rel, str):
            continue
        if isinstance(info.get("lfs_sha256"), str) and _HEX64.match(info["lfs_sha256"]):
            hashes[rel] = {"sha256": info["lfs_sha256"], "size": info.get("lfs_size")}
        elif isinstance(info.get("blob_id"), str) and _HEX40.match(info["blob_id"]):
            hashes[rel] = {"git_sha1": info["blob_id"], "size": info.get("size")}
    return hashes


def blob_hashes(snapshot_dir: Path, repo_root: Path) -> dict[str, dict[str, Any]]:
    hashes: dict[str, dict[str, Any]] = {}
    blobs = (repo_root / "blobs").resolve()
    for dirpath, _dirs, names in os.walk(snapshot_dir):
        for name in names:
            link = Path(dirpath) / name
            if not link.is_symlink():
                continue
            target = Path(os.path.realpath(link))
            if target.parent != blobs:
                continue
            rel = link.relative_to(snapshot_dir).as_posix()
            if _HEX64.match(target.name):
                hashes[rel] = {"sha256": target.name}
            elif _HEX40.match(target.name):
                hashes[rel] = {"git_sha1": target.name}
    return hashes
