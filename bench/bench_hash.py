"""Hashing on every core: a model of 1, 8 and 64 safetensors shards (2 GiB in all) against openssl.

Run: python bench/bench_hash.py [--total-mb 2048] [--shards 1 8 64] [--repeat 3]. The reference is
`openssl dgst -sha256` (hardware-accelerated SHA-256) on the same shards with one process per core,
each hashing its share of the files; in the same loop, `auditor scan FOLDER` as a whole process
(start-up, every scanner, policy, JSON report) and the inventory alone, timed inside a fresh process
(walk + SHA-256 + format, no interpreter start-up, no scanners). Everything reads from the page cache
(a warm-up read comes first); best of N for each, ratios from the bests.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import AUDITOR, best, openssl, workdir


def make_shards(folder: Path, shards: int, total_mb: int) -> list[Path]:
    """`shards` safetensors files of total_mb / shards each, written by the library in a child process
    (a child forked from a parent holding the tensors would inherit that peak RSS)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    each_mb = total_mb // shards
    if all(p.exists() and p.stat().st_size > each_mb * 1024 * 1024 for p in paths):
        return paths
    code = ("import sys, numpy as np; from safetensors.numpy import save_file; "
            "n = int(sys.argv[1]) * 1024 * 1024 // 4; "
            "w = np.random.default_rng(0).standard_normal(n, dtype=np.float32)\n"
            "for i, p in enumerate(sys.argv[2:]): save_file({f'layer{i}.weight': w}, p)")
    subprocess.run([sys.executable, "-c", code, str(each_mb), *map(str, paths)], check=True)
    return paths


def openssl_per_core(paths: list[Path]) -> float:
    """Wall seconds of one `openssl dgst -sha256` process per core, each on its share of the files."""
    cores = os.cpu_count() or 1
    shares = [paths[i::cores] for i in range(min(cores, len(paths)))]
    start = time.perf_counter()
    procs = [subprocess.Popen([openssl(), "dgst", "-sha256", *map(str, share)], stdout=subprocess.DEVNULL)
             for share in shares]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("openssl failed")
    return time.perf_counter() - start


def inventory_seconds(folder: Path) -> float:
    """The hashing stage alone, timed inside a fresh process (no interpreter start-up, no scanners)."""
    code = ("import sys, time; from auditor import inventory; from auditor.model import Options; "
            "from auditor.sources import local; o = Options(); s = local.open_snapshot(sys.argv[1], o); "
            "t = time.perf_counter(); inventory.build(s, o); print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                                check=True).stdout)


def measure(folder: Path, paths: list[Path], repeat: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {"openssl": [], "inventory": [], "scan": []}
    rss = 0.0
    for _ in range(repeat):   # in turn, so a load spike hits every tool
        runs["openssl"].append(openssl_per_core(paths))
        runs["inventory"].append(inventory_seconds(folder))
        seconds, peak = best([*AUDITOR, "scan", str(folder), "-q", "-o", "/dev/null"], repeat=1)
        runs["scan"].append(seconds)
        rss = max(rss, peak)
    found = {name: min(times) for name, times in runs.items()}
    found["rss"] = rss
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--total-mb", type=int, default=2048)
    ap.add_argument("--shards", type=int, nargs="*", default=[1, 8, 64])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated shards")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)   # an installed package has its .pyc files
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| shards | size each | openssl, 1 process/core | inventory (in-process) | ratio | auditor scan "
          "(whole process) | ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for shards in args.shards:
        folder = workdir("hash") / f"shards-{shards}"
        paths = make_shards(folder, shards, args.total_mb)
        openssl_per_core(paths)   # warm the page cache
        found = measure(folder, paths, args.repeat)
        ssl = found["openssl"]
        print(f"| {shards} | {paths[0].stat().st_size / 2**20:.0f} MiB | {ssl:.2f} s | {found['inventory']:.2f} s "
              f"| **{found['inventory'] / ssl:.2f}x** | {found['scan']:.2f} s | **{found['scan'] / ssl:.2f}x** "
              f"| {found['rss']:.0f} MB |", flush=True)
        if not args.keep:
            for path in paths:
                path.unlink()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
