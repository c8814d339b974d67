"""`auditor batch --ray` on a real two-node Ray cluster started on loopback (ray_support): the same
verdicts as the local pool, and a task whose worker dies is retried."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import batch_support
import pytest
from approvals_support import clean_model
from batch_support import fleet

from auditor import batch
from auditor.batch import plan

pytest_plugins = ["ray_support"]
ROOT = Path(__file__).resolve().parent.parent


def _comparable(out: Path) -> list[tuple[str, str, str, dict, list]]:
    summary = json.loads((out / "summary.json").read_text())
    rows = []
    for t in summary["targets"]:
        findings = []
        if t["status"] == "audited":
            result = json.loads((out / t["outputs"]["json"]).read_text())
            findings = sorted((f["rule"], f["file"]) for f in result["findings"])
        rows.append((t["target"], t["status"], t["verdict"], t["counts"], findings))
    return sorted(rows, key=lambda r: r[0])


# Ray's daemons miss their start-up deadlines on a machine busy with other test workers: this one runs on
# its own, after the parallel suite (README's test command).
@pytest.mark.serial
def test_ray_batch_matches_local_resumes_and_retries_a_dead_worker(ray_cluster: str, tmp_path: Path) -> None:
    """One test, so one cluster per test session even under xdist."""
    _matches_the_local_pool(ray_cluster, tmp_path / "a")
    _a_worker_that_dies_is_retried(ray_cluster, tmp_path / "b")


def _matches_the_local_pool(ray_cluster: str, tmp_path: Path) -> None:
    models = fleet(tmp_path)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    runs = {}
    for name, extra in (("local", ["--workers", "2"]), ("ray", ["--ray", ray_cluster])):
        runs[name] = subprocess.run([sys.executable, "-m", "auditor", "batch", str(models), "--out",
                                     str(tmp_path / name), "-q", *extra], capture_output=True, text=True, cwd=ROOT,
                                    env=env, timeout=300)
    assert runs["local"].returncode == runs["ray"].returncode == 2, runs["ray"].stderr
    assert _comparable(tmp_path / "ray") == _comparable(tmp_path / "local")
    ray_summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert ray_summary["runner"] == f"ray:{ray_cluster}" and ray_summary["total"] == 7
    # resumable on the cluster too
    again = subprocess.run([sys.executable, "-m", "auditor", "batch", str(models), "--out", str(tmp_path / "ray"),
                            "--ray", ray_cluster, "-q"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert again.returncode == 2
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["reused"] == 6


def _a_worker_that_dies_is_retried(ray_cluster: str, tmp_path: Path) -> None:
    models = tmp_path / "models"
    for i in range(2):
        clean_model(models / f"m{i}", seed=i)
    clean_model(models / "crash-once")
    result = batch.run(plan.read_targets(str(models)), tmp_path / "out", ray_address=ray_cluster,
                       task=batch_support.crash_once)
    marker = models / ".crash-once.crashed"
    assert marker.is_file()
    assert result["counts"] == {"pass": 3, "warn": 0, "fail": 0, "error": 0}
    retried = next(t for t in result["targets"] if t["target"].endswith("crash-once"))
    assert retried["worker"].split(":")[1] != marker.read_text()    # a different worker process finished it
