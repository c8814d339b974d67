"""Hub fetch timings against a real mirror (olah 0.5.4 on 127.0.0.1), with huggingface_hub as the reference.

Measured in one run, interleaved, best of N (the machine is shared: ratios in the same run matter):
  1. `auditor fetch hf://bench/weights --to DIR` (download, verify every file, all scanners, place DIR)
     vs `huggingface_hub.snapshot_download` of the same repo from the same olah, each as a fresh process
     with a fresh cache (so start-up is counted for both);
  2. `auditor scan --metadata-only` of a 200-shard repo (vs huggingface_hub `list_repo_tree` alone, the
     floor of any metadata audit), and the requests it made.
Usage: python bench/bench_hub.py [--shards 8] [--shard-mb 32] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from hubfixtures import Olah, RepoBuilder, card  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def shard(seed: int, mb: float) -> bytes:
    from safetensors.numpy import save
    n = max(1, int(mb * 1024 * 1024 / 4))
    return save({"w": np.random.default_rng(seed).standard_normal(n).astype(np.float32)})


def sharded_repo(builder: RepoBuilder, repo_id: str, count: int, mb: float) -> str:
    repo = builder.create(repo_id)
    shards = {f"model-{i:05d}-of-{count:05d}.safetensors": shard(i, mb) for i in range(1, count + 1)}
    index = {"metadata": {"total_size": sum(len(v) for v in shards.values())},
             "weight_map": {f"l{i}": n for i, n in enumerate(shards)}}
    builder.commit(repo, {"README.md": card({"license": "mit"}), "config.json": json.dumps({"x": "y" * 200}),
                          "model.safetensors.index.json": json.dumps(index)}, shards)
    return repo.head


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit {proc.returncode}: {proc.stderr[-800:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--shard-mb", type=float, default=32.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    env = {**os.environ, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    olah = Olah(work)
    try:
        builder = RepoBuilder(olah.mirrors)
        head = sharded_repo(builder, "bench/weights", args.shards, args.shard_mb)
        many = sharded_repo(builder, "bench/many", 200, 0.05)
        olah.start("bench/weights")
        total_mb = args.shards * args.shard_mb * 1.048576
        env["HF_ENDPOINT"] = olah.url
        fetch_s, hf_s, meta_s, tree_s = [], [], [], []
        for i in range(args.repeat):
            hf_cmd = [sys.executable, "-c",
                      "import sys; from huggingface_hub import snapshot_download; "
                      "snapshot_download('bench/weights', revision=sys.argv[1], cache_dir=sys.argv[2], token=False)",
                      head, str(work / f"hf-{i}")]
            fetch_cmd = [sys.executable, "-m", "auditor", "fetch", "hf://bench/weights", "--to",
                         str(work / f"placed-{i}"), "--cache-dir", str(work / f"auditor-{i}"), "-q"]
            meta_cmd = [sys.executable, "-m", "auditor", "scan", "hf://bench/many", "--metadata-only",
                        "--cache-dir", str(work / f"meta-{i}"), "-q", "-o", str(work / f"meta-{i}.json")]
            tree_cmd = [sys.executable, "-c",
                        "import sys; from huggingface_hub import HfApi; "
                        "list(HfApi(token=False).list_repo_tree('bench/many', revision=sys.argv[1], recursive=True))",
                        many]
            hf_s.append(wall(hf_cmd, env))
            fetch_s.append(wall(fetch_cmd, env))
            before = len(olah.requests())
            meta_s.append(wall(meta_cmd, env))
            meta_requests = olah.requests()[before:]
            tree_s.append(wall(tree_cmd, env))
            shutil.rmtree(work / f"hf-{i}", ignore_errors=True)
            shutil.rmtree(work / f"auditor-{i}", ignore_errors=True)
            shutil.rmtree(work / f"placed-{i}", ignore_errors=True)
        weight_gets = [r for r in meta_requests if ".safetensors " in r and "/resolve/" in r]
        report = json.loads((work / f"meta-{args.repeat - 1}.json").read_text())
        one = [f for f in report["findings"] if f["rule"] == "HUB-METADATA-ONLY"]
        per_shard = [f for f in report["findings"] if f["rule"] in ("SHARDS-MISSING-SHARD", "HUB-FILE-MISSING")]
        print(f"olah {olah.url}; best of {args.repeat}, interleaved; load average {os.getloadavg()[0]:.1f}")
        print(f"bench/weights: {args.shards} LFS shards x {args.shard_mb:g} MiB = {total_mb:.0f} MB")
        print(f"  huggingface_hub snapshot_download (fresh process, fresh cache)  {min(hf_s):7.2f} s  "
              f"(all: {', '.join(f'{t:.2f}' for t in hf_s)})")
        print(f"  auditor fetch --to DIR (download, verify, scan, place)          {min(fetch_s):7.2f} s  "
              f"(all: {', '.join(f'{t:.2f}' for t in fetch_s)})")
        print(f"  ratio auditor fetch / snapshot_download (best / best)           {min(fetch_s) / min(hf_s):7.2f}x")
        print("bench/many: 200 LFS shards, --metadata-only")
        print(f"  auditor scan --metadata-only (fresh process)                    {min(meta_s):7.2f} s")
        print(f"  huggingface_hub list_repo_tree alone (fresh process)            {min(tree_s):7.2f} s")
        print(f"  requests: {len(meta_requests)}, weight GETs: {len(weight_gets)}, HUB-METADATA-ONLY findings: "
              f"{len(one)}, per-shard missing findings: {len(per_shard)}")
    finally:
        olah.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
