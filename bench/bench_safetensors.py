"""Issue 4 benchmark: verifying a 2 GB safetensors file.

Run: python bench/bench_safetensors.py [--size-mb 2048] [--tensors 256] [--keep]
Generates a real safetensors file (safetensors library, in a child process), then measures in the same run:
- `openssl dgst -sha256 FILE` (the reference: hashing is the inventory's job and unavoidable);
- the safetensors scanner alone (header parse + layout + safe_open cross-check) in a fresh process,
  with its peak RSS: it must not read the data section, so its cost must stay under 5% of openssl;
- `safetensors.safe_open` listing the tensors (the library's own header validation) as a second reference;
- `auditor scan FILE` as a whole process (hashing + every scanner), with its peak RSS.
Best of 3 after a warm-up read (page cache). The generated file is deleted unless --keep.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import AUDITOR, best, openssl, workdir

SCANNER_ONLY = """
import sys, time, os
from pathlib import Path
from auditor import rules
from auditor.model import FileRecord, Options, Snapshot
from auditor.scanners import ScanContext, safetensors
path = Path(sys.argv[1])
rules.catalog()                                   # load the rule catalog before timing, like an audit does
ctx = ScanContext(Snapshot(root=str(path.parent), kind="local-file", target=str(path)),
                  (FileRecord(path.name, path.stat().st_size, "", "safetensors"),), Options())
start = time.perf_counter()
findings = list(safetensors.scan(ctx))
cold = time.perf_counter() - start                # includes the one-off import the library binding makes (numpy)
start = time.perf_counter()
findings = list(safetensors.scan(ctx))
warm = time.perf_counter() - start
print(warm, cold, len(findings), ctx.facts["safetensors"][path.name]["tensors"])
"""

LIBRARY_ONLY = """
import sys, time
from safetensors import safe_open
start = time.perf_counter()
with safe_open(sys.argv[1], framework="numpy") as f:
    n = len(list(f.keys()))
print(time.perf_counter() - start, n)
"""


def make_file(path, size_mb: int, tensors: int) -> None:  # type: ignore[no-untyped-def]
    if path.exists() and path.stat().st_size >= size_mb * 1024 * 1024:
        return
    code = ("import sys, numpy as np; from safetensors.numpy import save_file; "
            "size, count = int(sys.argv[1]) * 1024 * 1024, int(sys.argv[2]); per = size // count // 2; "
            "rng = np.random.default_rng(0); block = rng.integers(0, 65535, per, dtype=np.uint16); "
            "save_file({f'model.layers.{i}.weight': block.view(np.float16).reshape(-1, 64) for i in range(count)}, "
            "sys.argv[3], metadata={'format': 'pt'})")
    subprocess.run([sys.executable, "-c", code, str(size_mb), str(tensors), str(path)], check=True)


def child_time(code: str, path) -> tuple[float, float, str]:  # type: ignore[no-untyped-def]
    """Best in-process time reported by the child, and the child's peak RSS (MB)."""
    import os
    results = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read().decode().split() if proc.stdout else []
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(proc.stderr.read().decode() if proc.stderr else "child failed")
        results.append((float(out[0]), usage.ru_maxrss / 1024, " ".join(out[1:])))
    return min(r[0] for r in results), max(r[1] for r in results), results[0][2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--tensors", type=int, default=256)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    out = workdir("safetensors")
    big = out / "big.safetensors"
    t = time.perf_counter()
    make_file(big, args.size_mb, args.tensors)
    print(f"generated {big.stat().st_size / 1e9:.2f} GB, {args.tensors} tensors in {time.perf_counter() - t:.1f} s")
    try:
        best([openssl(), "dgst", "-sha256", str(big)], repeat=1)        # warm the page cache
        t_ssl, rss_ssl = best([openssl(), "dgst", "-sha256", str(big)])
        t_scan, rss_scan, scan_out = child_time(SCANNER_ONLY, big)
        t_cold, findings, tensors = float(scan_out.split()[0]), *scan_out.split()[1:]
        t_lib, rss_lib, _ = child_time(LIBRARY_ONLY, big)
        t_aud, rss_aud = best([*AUDITOR, "scan", str(big), "-q", "-o", "/dev/null"])
        report = out / "report.json"
        subprocess.run([*AUDITOR, "scan", str(big), "-q", "-o", str(report), "--format", "json"], check=False)
        timings = json.loads(report.read_text()).get("timings", {})
        size_gb = big.stat().st_size / 1e9
        print(f"openssl dgst -sha256:            {t_ssl:.3f} s ({size_gb / t_ssl:.2f} GB/s), peak RSS {rss_ssl:.0f} MB")
        print(f"safetensors scanner alone:       {t_scan * 1000:.1f} ms = {t_scan / t_ssl * 100:.2f}% of openssl, "
              f"peak RSS {rss_scan:.0f} MB ({findings} findings, {tensors} tensors)")
        print(f"  first call in a fresh process: {t_cold * 1000:.1f} ms (+ the library's one-off numpy import)")
        print(f"openssl + scanner:               {(t_ssl + t_scan) / t_ssl:.3f}x openssl (bar: <= 1.05x)")
        print(f"safe_open + keys (library):      {t_lib * 1000:.1f} ms, peak RSS {rss_lib:.0f} MB")
        print(f"auditor scan (whole process):    {t_aud:.3f} s = {t_aud / t_ssl:.2f}x openssl, peak RSS {rss_aud:.0f} MB")
        print(f"  in that scan: hashing (overlaps the scanners) {timings.get('hashing', 0):.3f} s, "
              f"scan.safetensors {timings.get('scan.safetensors', 0) * 1000:.1f} ms, "
              f"scan.shards {timings.get('scan.shards', 0) * 1000:.1f} ms")
    finally:
        if not args.keep:
            big.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
