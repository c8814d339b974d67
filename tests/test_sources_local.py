"""Local targets: folders, single files and the Hugging Face cache layout."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hfcache_support import cache_entry, git_blob_sha1

from auditor.errors import AuditorError
from auditor.model import Options
from auditor.pipeline import audit
from auditor.sources import is_hub_target, local


def _make_cache(root: Path) -> tuple[Path, str]:
    commit = "a" * 40
    weights, config = b"\x00" * 64, b'{"model_type": "tiny"}'
    files = {"model.bin": (weights, hashlib.sha256(weights).hexdigest()), "config.json": (config, git_blob_sha1(config))}
    return cache_entry(root, "acme/tiny", files, commit), commit


def test_hf_cache_snapshot_records_repo_commit_and_publisher_hashes(tmp_path: Path) -> None:
    repo, commit = _make_cache(tmp_path)
    for target in (repo / "snapshots" / commit, repo):
        snap = local.open_snapshot(str(target), Options())
        assert snap.kind == "hf-cache" and snap.repo_id == "acme/tiny" and snap.resolved_revision == commit
        assert set(snap.publisher_hashes) == {"model.bin", "config.json"}
        assert "sha256" in snap.publisher_hashes["model.bin"]
        assert "git_sha1" in snap.publisher_hashes["config.json"]


def test_hf_cache_symlinks_into_blobs_are_not_escapes(tmp_path: Path) -> None:
    repo, commit = _make_cache(tmp_path)
    result = audit(str(repo / "snapshots" / commit))
    assert {f.path for f in result.files} == {"model.bin", "config.json"}
    assert not [f for f in result.findings if f.rule.startswith("INVENTORY-SYMLINK")]
    rec = next(f for f in result.files if f.path == "model.bin")
    assert rec.publisher_sha256 == rec.sha256


def test_not_a_regular_file(tmp_path: Path) -> None:
    import os
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(AuditorError, match="not a regular file"):
        local.open_snapshot(str(tmp_path / "pipe"), Options())


def test_hub_targets_are_told_apart_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert is_hub_target("hf://org/name@v1")
    assert is_hub_target("Qwen/Qwen2.5-0.5B")
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").mkdir()
    assert not is_hub_target("org/name")
    assert not is_hub_target("./model")
