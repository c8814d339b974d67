"""Offline (--offline, HF_HUB_OFFLINE=1): audit what the cache holds at the pinned commit, no request.

The commit comes from the revision (a SHA) or the cache's refs/<revision>; the publisher's hashes from
the tree listing huggingface_hub recorded in the cache (trees/<commit>.json). What could not be
verified offline (no recorded tree, files the tree lists that are not cached, the lineage, which needs
the endpoint) is said in the snapshot's facts and reported by the provenance scanner.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from auditor.errors import AuditorError
from auditor.model import Snapshot
from auditor.sources import local
from auditor.sources.hub import _files

_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def open_snapshot(target: str, repo_id: str, requested: str, endpoint: str, cache: Path) -> Snapshot:
    folder = _files.repo_folder(cache, repo_id)
    revision = requested or "main"
    if _HEX40.match(revision):
        commit = revision
    else:
        ref = folder / "refs" / revision
        commit = ref.read_text(encoding="ascii", errors="replace").strip() if ref.is_file() else ""
    root = folder / "snapshots" / commit
    if not commit or not root.is_dir():
        raise AuditorError(f"{repo_id}@{revision}: offline, and the cache {cache} holds no snapshot of it "
                           "(tried the Hub cache only: no request is made offline)")
    tree = local.cache_tree(folder, commit)
    publisher = tree if tree is not None else local.blob_hashes(root, folder)
    notes = ["offline: the lineage was not followed (it needs the endpoint)"]
    if tree is None:
        notes.append("offline: the cache has no recorded tree listing for this commit; files were checked against "
                     "the cache's blob names only")
    missing = sorted(set(publisher) - {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()})
    if missing:
        notes.append(f"offline: {len(missing)} listed file(s) are not in the cache and were not audited: "
                     + ", ".join(missing[:20]))
    return Snapshot(root=str(root), kind="hub", target=target, repo_id=repo_id, requested_revision=requested,
                    resolved_revision=commit, endpoint=endpoint, hosts_contacted=(), publisher_hashes=publisher,
                    metadata_only=bool(missing), fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    facts={"link_root": str(folder), "revision_kind": "commit" if _HEX40.match(revision) else "branch",
                           "offline": True, "unverified_sources": notes, "cache_dir": str(cache),
                           "remote_files": [{"path": p, **publisher[p], "downloaded": False} for p in missing],
                           "card": {}})
