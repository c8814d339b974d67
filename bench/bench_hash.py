"""Spine benchmark: hashing a 1 GB safetensors file, start-up time, and a folder of 200 small files.

Run: python bench/bench_hash.py [--size-mb 1024]. Compares `auditor scan FILE` with
`openssl dgst -sha256 FILE` (hardware-accelerated SHA-256) in the same run; both read from the
page cache (a warm-up read comes first), best of 3.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import numpy as np
from _common import AUDITOR, best, openssl, workdir
from safetensors.numpy import save_file


def make_big(path, size_mb: int) -> None:  # type: ignore[no-untyped-def]
    """In a child process: a child forked from a parent holding 1 GB would inherit that peak RSS."""
    if path.exists() and path.stat().st_size > size_mb * 1024 * 1024:
        return
    code = ("import sys, numpy as np; from safetensors.numpy import save_file; "
            "n = int(sys.argv[1]) * 1024 * 1024 // 4; "
            "save_file({'weight': np.random.default_rng(0).standard_normal(n, dtype=np.float32)}, sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(size_mb), str(path)], check=True)


def _inventory_seconds(path) -> float:  # type: ignore[no-untyped-def]
    """The hashing stage alone, timed inside a fresh process (no interpreter start-up, no scanners)."""
    code = ("import sys, time; from auditor import inventory; from auditor.model import Options; "
            "from auditor.sources import local; o = Options(); s = local.open_snapshot(sys.argv[1], o); "
            "t = time.perf_counter(); inventory.build(s, o); print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                                check=True).stdout)


def make_small_repo(root) -> None:  # type: ignore[no-untyped-def]
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(200):
        kind = i % 4
        if kind == 0:
            (root / f"config_{i}.json").write_text(json.dumps({"hidden_size": 64, "layer": i}))
        elif kind == 1:
            (root / f"tokenizer_{i}.json").write_text(json.dumps({"vocab": {f"t{j}": j for j in range(500)}}))
        elif kind == 2:
            save_file({"w": rng.standard_normal((32, 32), dtype=np.float32)}, str(root / f"t_{i}.safetensors"))
        else:
            (root / f"README_{i}.md").write_text("# model card\n" * 20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", action="store_true", help="keep the generated 1 GB file")
    args = ap.parse_args()
    out = workdir("hash")
    big = out / "big.safetensors"
    make_big(big, args.size_mb)
    best([openssl(), "dgst", "-sha256", str(big)], repeat=1)   # warm the page cache
    t_ssl, _ = best([openssl(), "dgst", "-sha256", str(big)])
    t_aud, rss = best([*AUDITOR, "scan", str(big), "-q", "-o", "/dev/null"])
    t_inv = min(_inventory_seconds(big) for _ in range(3))
    size_gb = big.stat().st_size / 1e9
    print(f"file: {size_gb:.2f} GB")
    print(f"openssl dgst -sha256: {t_ssl:.2f} s ({size_gb / t_ssl:.2f} GB/s)")
    print(f"inventory (walk + SHA-256 + format), in-process: {t_inv:.2f} s  ratio {t_inv / t_ssl:.2f}x")
    print(f"auditor scan, whole process: {t_aud:.2f} s  ratio {t_aud / t_ssl:.2f}x  peak RSS {rss:.0f} MB")

    t_start, rss_start = best([*AUDITOR, "--version"], repeat=5)
    print(f"start-up (auditor --version): {t_start:.3f} s, peak RSS {rss_start:.0f} MB")
    small = out / "small-repo"
    make_small_repo(small)
    t_small, rss_small = best([*AUDITOR, "scan", str(small), "-q", "-o", "/dev/null"], repeat=5)
    print(f"200 small files (whole process): {t_small:.3f} s, peak RSS {rss_small:.0f} MB")
    if not args.keep:
        big.unlink()
    shutil.rmtree(small)


if __name__ == "__main__":
    main()
