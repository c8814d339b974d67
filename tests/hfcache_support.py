"""A Hugging Face cache entry as huggingface_hub writes it: snapshots/<sha>/<file> -> ../../blobs/<etag>."""
from __future__ import annotations

import hashlib
from pathlib import Path


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def cache_entry(root: Path, repo_id: str, files: dict[str, tuple[bytes, str]], commit: str) -> Path:
    """The repo folder (models--org--name) holding `files` (name -> (bytes, etag)) at `commit`."""
    org, name = repo_id.split("/")
    repo = root / f"models--{org}--{name}"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for rel, (data, etag) in files.items():
        (repo / "blobs" / etag).write_bytes(data)
        (snap / rel).symlink_to(Path("../../blobs") / etag)
    return repo
