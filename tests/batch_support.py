"""Batch test helpers: a generated fleet of models, and task wrappers that kill their worker process.

The wrappers are importable by pool workers (spawn passes sys.path) and by Ray workers (the test
cluster's raylets get this folder on PYTHONPATH).
"""
from __future__ import annotations

import os
from pathlib import Path

from approvals_support import clean_model, pickle_model

from auditor.batch import task
from auditor.batch.plan import Job


def fleet(root: Path, clean: int = 4) -> Path:
    """clean safetensors models, one os.system pickle (fails), a truncated safetensors file (not a pass), and
    an interrupted Hub download (a cache folder with no snapshot: could not be audited)."""
    models = root / "models"
    for i in range(clean):
        clean_model(models / f"clean-{i}", seed=i)
    pickle_model(models / "evil-pickle")
    corrupt = models / "corrupt"
    corrupt.mkdir(parents=True)
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 16)
    (models / "models--acme--broken" / "snapshots").mkdir(parents=True)
    return models


def crash_once(job: Job) -> task.Outcome:
    """os._exit on the first attempt at a target named crash-once*; audits normally afterwards."""
    target = Path(job.target)
    if target.name.startswith("crash-once"):
        marker = target.parent / f".{target.name}.crashed"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(17)
    return task.run(job)


def crash_always(job: Job) -> task.Outcome:
    if Path(job.target).name.startswith("crash-always"):
        os._exit(17)
    return task.run(job)


def hog_memory(job: Job) -> task.Outcome:
    """Allocates 512 MiB before auditing (a target whose audit needs more memory than the worker may use)."""
    hog = bytearray(512 << 20)
    hog[-1] = 1
    return task.run(job)
