"""Hub fetch timings against a real mirror (olah 0.5.4 on 127.0.0.1), with huggingface_hub as the reference.

A repo of 50 LFS safetensors shards (SHARD_MB each) is served by olah. Measured in one run:
  - auditor --metadata-only (resolve, tree listing, download of the small files, scanners);
  - huggingface_hub alone: list_repo_tree (the least any metadata audit needs) and snapshot_download (full);
  - auditor full (download + verify every file + all scanners).
Usage: python bench/bench_hub.py [--shard-mb 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from hubfixtures import Olah, RepoBuilder, card  # noqa: E402


def shard(seed: int, mb: float) -> bytes:
    from safetensors.numpy import save
    n = max(1, int(mb * 1024 * 1024 / 4))
    return save({"w": np.random.default_rng(seed).standard_normal(n).astype(np.float32)})


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shard-mb", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    olah = Olah(work)
    try:
        builder = RepoBuilder(olah.mirrors)
        repo = builder.create("bench/sharded")
        shards = {f"model-{i:05d}-of-00050.safetensors": shard(i, args.shard_mb) for i in range(1, 51)}
        index = {"metadata": {}, "weight_map": {f"l{i}": n for i, n in enumerate(shards)}}
        builder.commit(repo, {"README.md": card({"license": "mit"}), "config.json": json.dumps({"x": "y" * 200}),
                              "model.safetensors.index.json": json.dumps(index)}, shards)
        olah.start("bench/sharded")
        total_mb = sum(len(v) for v in shards.values()) / 1e6

        from huggingface_hub import HfApi, snapshot_download

        from auditor.model import Options
        from auditor.pipeline import audit

        def fresh_cache() -> str:
            path = work / f"cache-{time.perf_counter_ns()}"
            return str(path)

        meta_s, meta = timed(lambda: audit("hf://bench/sharded", Options(
            endpoint=olah.url, token=False, metadata_only=True, cache_dir=fresh_cache())), args.repeat)
        api = HfApi(endpoint=olah.url, token=False)
        tree_s, _ = timed(lambda: list(api.list_repo_tree("bench/sharded", revision=repo.head, recursive=True)),
                          args.repeat)
        hf_full_s, _ = timed(lambda: snapshot_download("bench/sharded", revision=repo.head, endpoint=olah.url,
                                                       token=False, cache_dir=fresh_cache()), args.repeat)
        full_s, full = timed(lambda: audit("hf://bench/sharded", Options(
            endpoint=olah.url, token=False, cache_dir=fresh_cache())), args.repeat)
        weights_requested = [line for line in olah.requests() if ".safetensors " in line and "/resolve/" in line]
        remote = meta.facts["provenance"]["remote_files"]  # type: ignore[attr-defined]
        verified = full.facts["integrity"]["verification"]  # type: ignore[attr-defined]
        rows = [
            ("auditor --metadata-only (50 shards listed, none downloaded)", meta_s),
            ("huggingface_hub list_repo_tree alone (reference floor)", tree_s),
            ("huggingface_hub snapshot_download, full (reference)", hf_full_s),
            ("auditor full: download + verify + all scanners", full_s),
        ]
        print(f"repo: 50 LFS shards x {args.shard_mb} MB = {total_mb:.0f} MB; olah {olah.url}; "
              f"median of {args.repeat}")
        for name, secs in rows:
            print(f"  {name:<62} {secs:7.2f} s")
        print(f"  metadata-only / list_repo_tree: {meta_s / tree_s:.1f}x; full auditor / snapshot_download: "
              f"{full_s / hf_full_s:.2f}x; metadata-only / full download: {meta_s / hf_full_s:.2f}x")
        print(f"  metadata-only remote files with publisher sha256: {len(remote)}; "
              f"full: verified {verified['verified']}, mismatched {verified['mismatched']}")
        print(f"  weight GETs in olah's log (all from the full runs): {len(weights_requested)}")
    finally:
        olah.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
