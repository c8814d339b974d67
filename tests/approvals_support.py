"""Models and results for the approvals and batch tests, made with the real libraries at test time."""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def clean_model(folder: Path, seed: int = 0) -> Path:
    """A small safetensors model with a config and a permissive license: passes the default policy."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"w": rng.standard_normal((8, 8)).astype(np.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}\n')
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\nA fixture model.\n")
    return folder


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def pickle_model(folder: Path) -> Path:
    """A pickle whose load would call os.system: fails every policy. Dumped, never loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3], "hook": _Payload()}, protocol=4))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\nA fixture model.\n")
    return folder


def hf_cache_snapshot(cache: Path, repo_id: str, seed: int = 0) -> Path:
    """A Hugging Face cache layout: models--org--name/{blobs,refs,snapshots/<sha>} with symlinked files."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(f"{repo_id}{seed}".encode()).hexdigest()
    staging = clean_model(cache / f".staging-{seed}", seed)
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for f in sorted(staging.iterdir()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    return snap
