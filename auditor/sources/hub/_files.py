"""The publisher's listing, downloads into the cache, and verification of what landed there.

A file's publisher hash is its LFS sha256, or the git blob SHA-1 for small files. Small files (cards,
configs, license texts) are verified here, before lineage or license facts are read from them; a blob
that does not match is evicted from the cache (and recorded so a later run evicts it too), so bytes
that failed verification never stay cached to be served as if they were the publisher's.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError
from auditor.sources.hub import _download
from auditor.sources.hub._http import config
from auditor.sources.hub._retry import Budget

SUSPECTS = ".auditor-suspect-blobs.json"


def tree(api: Any, repo_id: str, commit: str, budget: Budget, unsafe: list[str] | None = None,
         limit: int = 200_000) -> dict[str, Any]:
    """The publisher's file listing at `commit` (pages and entries bounded, _download.list_tree);
    paths that could escape a folder go to `unsafe`."""
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import get_session
    entries: dict[str, Any] = {}
    pages = int(config()["listing_max_pages"])
    for item in _download.list_tree(get_session(), api.endpoint, repo_id, commit, api._build_hf_headers(),
                                    budget, pages, limit):
        if item.get("type") != "file":
            continue
        try:
            entry = RepoFile(**item)
        except (KeyError, TypeError) as exc:
            raise AuditorError(f"{repo_id}@{commit}: a listing entry is malformed ({exc})") from None
        if unsafe_path(entry.path):
            if unsafe is not None:
                unsafe.append(entry.path[:300])
            continue
        entries[entry.path] = entry
    return entries


def record_tree(cache: Path, repo_id: str, commit: str, entries: dict[str, Any]) -> None:
    """The listing in huggingface_hub's own tree cache (trees/<commit>.json), read by offline audits."""
    from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache
    write_tree_cache(str(repo_folder(cache, repo_id)), commit, {
        path: TreeCacheEntry(size=int(e.size or 0), blob_id=str(e.blob_id or ""),
                             lfs_sha256=e.lfs.sha256 if e.lfs is not None else None,
                             lfs_size=e.lfs.size if e.lfs is not None else None)
        for path, e in entries.items()})


def unsafe_path(path: str) -> bool:
    parts = path.split("/")
    return (not path or path.startswith("/") or "\\" in path or "\0" in path or ":" in parts[0]
            or any(p in ("", ".", "..") for p in parts))


def publisher_hash(entry: Any) -> dict[str, Any]:
    if entry.lfs is not None and getattr(entry.lfs, "sha256", None):
        return {"sha256": entry.lfs.sha256, "size": entry.lfs.size}
    if entry.blob_id:
        return {"git_sha1": entry.blob_id, "size": entry.size}
    return {"size": entry.size}


def is_weight(path: str, size: int | None) -> bool:
    cfg = config()
    return path.lower().endswith(tuple(cfg["weight_suffixes"])) or (size or 0) > cfg["metadata_max_bytes"]


def matches(path: Path, expected: dict[str, Any]) -> bool:
    """Whether the file's bytes hash to the publisher's sha256 (or git blob SHA-1)."""
    size = path.stat().st_size
    if expected.get("sha256"):
        digest = hashlib.sha256()
    elif expected.get("git_sha1"):
        digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    else:
        return False
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == (expected.get("sha256") or expected.get("git_sha1"))


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def download(repo_id: str, commit: str, paths: list[str], publisher: dict[str, dict[str, Any]], endpoint: str,
             token: str | bool, cache: Path, budget: Budget) -> tuple[Path, list[str], dict[str, list[Any]]]:
    """Download `paths` at `commit` into the cache (verified, resumable: _download.py); return the
    snapshot folder, the paths whose bytes did not match the listing, and the hashes computed while
    downloading (_download.download)."""
    cache.mkdir(parents=True, exist_ok=True)
    evict_suspects(cache, repo_id)
    jobs = [_download.Job(path, publisher.get(path, {})) for path in paths]
    return _download.download(repo_id, commit, jobs, endpoint, token, repo_folder(cache, repo_id), budget,
                              progress_sink(), int(config()["download_workers"]))


def record_ref(cache: Path, repo_id: str, revision: str, commit: str) -> None:
    """refs/<branch or tag> -> commit, as huggingface_hub records it (offline audits resolve it)."""
    from huggingface_hub.file_download import _cache_commit_hash_for_specific_revision
    if revision and revision != commit:
        _cache_commit_hash_for_specific_revision(str(repo_folder(cache, repo_id)), revision, commit)
    elif not revision:
        _cache_commit_hash_for_specific_revision(str(repo_folder(cache, repo_id)), "main", commit)


_progress: list[_download.DownloadProgress] = []


def progress_sink() -> _download.DownloadProgress | None:
    return _progress[-1] if _progress else None


@contextmanager
def reporting(callback: _download.DownloadProgress | None) -> Iterator[None]:
    """Byte progress of every download in the block goes to `callback` (the CLI's progress display)."""
    if callback is None:
        yield
        return
    _progress.append(callback)
    try:
        yield
    finally:
        _progress.remove(callback)


def evict(root: Path, paths: Iterable[str]) -> list[str]:
    """Remove the snapshot links and the blobs behind them; record them so no later run trusts them."""
    removed = []
    for rel in paths:
        link = root / rel
        if not link.is_symlink() and not link.exists():
            continue
        blob = Path(os.path.realpath(link))
        link.unlink(missing_ok=True)
        if blob != link and blob.is_file() and blob.parent.name == "blobs":
            blob.unlink(missing_ok=True)
        removed.append(rel)
    return removed


def record_suspects(cache: Path, repo_id: str, root: Path, paths: list[str]) -> None:
    folder = repo_folder(cache, repo_id)
    if not paths or not folder.is_dir():
        return
    listed = {str(Path(os.path.realpath(root / p))) for p in paths}
    (folder / SUSPECTS).write_text(json.dumps(sorted(listed)))


def evict_suspects(cache: Path, repo_id: str) -> None:
    """Blobs a previous audit found mismatched (and could not remove then) are deleted before any reuse."""
    record = repo_folder(cache, repo_id) / SUSPECTS
    try:
        suspects = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    for blob in suspects if isinstance(suspects, list) else []:
        Path(str(blob)).unlink(missing_ok=True)
    record.unlink(missing_ok=True)


def copy_snapshot(root: Path, dest: Path, paths: list[str] | None = None,
                  on_file: Callable[[str], None] | None = None) -> None:
    """Copy the snapshot's files (symlinks into the cache dereferenced) into a fresh folder `dest`."""
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".cache"]
        for name in names:
            src = Path(dirpath) / name
            rel = src.relative_to(root).as_posix()
            if paths is not None and rel not in paths:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            if on_file:
                on_file(rel)
