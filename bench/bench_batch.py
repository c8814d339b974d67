"""Batch throughput: N small generated models audited by `auditor batch`, locally (process pool, one
worker per core) and on a two-node Ray cluster started on this machine (a head and one worker node).

    python bench/bench_batch.py [--models 1000] [--no-ray]

Reference: the same models audited one `auditor scan` process each, for a sample (start-up included),
which is what a shell loop would cost. Prints a Markdown table for bench/RESULTS.md ("Batch").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from _common import AUDITOR, best, workdir  # noqa: E402
from ray_support import _stop, start_cluster  # noqa: E402  - the tests' loopback Ray cluster


def make_models(root: Path, count: int) -> Path:
    models = root / "models"
    if models.is_dir() and len(list(models.iterdir())) == count:
        return models
    shutil.rmtree(models, ignore_errors=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = models / f"model-{i:04d}"
        folder.mkdir(parents=True)
        save_file({"w": rng.standard_normal((16, 16)).astype(np.float32)}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 16, "seed": i}))
        (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\nA generated model.\n")
    return models


def timed_batch(models: Path, out: Path, *extra: str) -> tuple[float, dict]:
    import subprocess
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run = subprocess.run([*AUDITOR, "batch", str(models), "--out", str(out), "-q", *extra], capture_output=True,
                         text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    elapsed = time.perf_counter() - start
    if run.returncode not in (0, 1):
        raise SystemExit(f"batch failed ({run.returncode}): {run.stderr[-800:]}")
    return elapsed, json.loads((out / "summary.json").read_text())


def ray_cluster(env: dict[str, str], cpus_per_node: int):  # type: ignore[no-untyped-def]
    temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    address, procs = start_cluster(temp, env, cpus_per_node)
    return address, procs, temp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    work = workdir("batch")
    models = make_models(work, args.models)
    sample = sorted(models.iterdir())[0]
    one_scan, _rss = best([*AUDITOR, "scan", str(sample), "-o", os.devnull, "-q"])
    rows = [("one `auditor scan` process per model (shell loop), one model", f"{one_scan:.2f} s",
             f"{1 / one_scan:.1f} models/s on 1 core")]
    local_s, summary = timed_batch(models, work / "out-local", "--workers", str(cores))
    rows.append((f"`auditor batch`, local pool, {cores} workers, {args.models} models", f"{local_s:.1f} s",
                 f"{args.models / local_s:.1f} models/s = {args.models / local_s / cores:.1f} per core; "
                 f"{local_s / args.models * cores * 1000:.0f} ms CPU-wall per model"))
    resumed_s, again = timed_batch_resume(models, work / "out-local")
    rows.append(("same batch again (all current: skipped)", f"{resumed_s:.1f} s", f"{again['reused']} reused"))
    counts = summary["counts"]
    if not args.no_ray:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
               "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        address, procs, temp = ray_cluster(env, max(1, cores // 2))
        try:
            ray_s, ray_summary = timed_batch(models, work / "out-ray", "--ray", address)
        finally:
            for proc in reversed(procs):
                _stop(proc)
            shutil.rmtree(temp, ignore_errors=True)
        same = ray_summary["counts"] == counts
        rows.append((f"`auditor batch --ray`, 2 nodes x {max(1, cores // 2)} CPU on this machine, {args.models} models",
                     f"{ray_s:.1f} s", f"{args.models / ray_s:.1f} models/s = {args.models / ray_s / cores:.1f} per "
                     f"core; same verdicts as local: {same}"))
    print(f"verdicts: {counts}\n")
    print("| measure | time | throughput |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def timed_batch_resume(models: Path, out: Path) -> tuple[float, dict]:
    import subprocess
    start = time.perf_counter()
    subprocess.run([*AUDITOR, "batch", str(models), "--out", str(out), "-q"], capture_output=True, check=False)
    return time.perf_counter() - start, json.loads((out / "summary.json").read_text())


if __name__ == "__main__":
    main()
