"""Issue 4 benchmark: verifying a 2 GB safetensors file.

Run: python bench/bench_safetensors.py [--size-mb 2048] [--tensors 256] [--keep]
Generates a real safetensors file (safetensors library, in a child process), then measures in the same run:
- `openssl dgst -sha256 FILE` (the reference: hashing is the inventory's job and unavoidable);
- the safetensors scanner alone (header parse + layout + safe_open cross-check) in a fresh process,
  with its peak RSS: it must not read the data section, so its cost must stay under 5% of openssl;
- `safetensors.safe_open` listing the tensors (the library's own header validation) as a second reference;
- `auditor scan FILE` as a whole process (hashing + every scanner), with its peak RSS.
Best of 3 after a warm-up read (page cache). The generated file is deleted unless --keep.

`--bombs` measures hostile weight-format inputs instead, each scanned by its scanner in a fresh process
(time and peak RSS): a 200 KB tokenizer_config.json and a 400 KB safetensors header built to make a
backtracking depth check quadratic, 5,000,001 protobuf padding fields before a PyFunc, three fuzzed .h5
files. The reference is the previous bracket-regex depth check on the same JSON, in the same run.
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


ONE_SCANNER = """
import sys
sys.path.insert(0, sys.argv[3])
from tests.formats_support import run_scanner
from pathlib import Path
import resource
found = run_scanner(sys.argv[1], Path(sys.argv[2]))[0]
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(peak // 1024, len(found), sorted({(f.rule, f.severity) for f in found}))
"""

OLD_DEPTH = r"""
import re, sys
data = open(sys.argv[1], "rb").read()
for match in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', data, re.S):
    pass
"""


def _timed(cmd: list[str], timeout: float) -> tuple[float, str]:
    """Wall seconds and stdout of one child; inf when killed at `timeout`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return float("inf"), "killed"
    return time.perf_counter() - start, out.decode().strip()


def bombs() -> None:
    import random
    import struct
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.formats_support import pb_key, tf_graph, tf_node

    repo = str(Path(__file__).resolve().parent.parent)
    out = workdir("bombs")
    cases: dict[str, tuple[str, Path]] = {}
    quotes = '"\\' * 100_000                               # 200 KB: `"\` repeated, never closed
    (out / "json").mkdir(exist_ok=True)
    (out / "json" / "tokenizer_config.json").write_text('{"chat_template": ' + quotes)
    cases["200 KB tokenizer_config.json (unclosed escaped quotes)"] = ("templates", out / "json")
    (out / "deep").mkdir(exist_ok=True)
    (out / "deep" / "tokenizer_config.json").write_text('{"chat_template": "x", "d": ' + "[" * 100_000 + "]" * 100_000 + "}")
    cases["200 KB deep JSON (100,000 levels)"] = ("templates", out / "deep")
    (out / "st").mkdir(exist_ok=True)
    header = ('{"a": ' + '"\\' * 200_000).encode()
    (out / "st" / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    cases["400 KB safetensors header (unclosed escaped quotes)"] = ("safetensors", out / "st")
    (out / "pb").mkdir(exist_ok=True)
    padding = (pb_key(9, 0) + b"\0") * 5_000_001
    (out / "pb" / "frozen_graph.pb").write_bytes(padding + tf_graph([tf_node("cb", "PyFunc")]))
    cases["frozen graph: 5,000,001 padding fields + PyFunc"] = ("tensorflow", out / "pb")
    (out / "h5").mkdir(exist_ok=True)
    import h5py
    import numpy as np
    base = out / "h5" / "base.h5"
    with h5py.File(base, "w") as h5:
        h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        h5.create_dataset("w", data=np.zeros((64, 64), dtype=np.float32))
    raw = base.read_bytes()
    base.unlink()
    rng = random.Random(7)
    for i in range(3):
        fuzzed = bytearray(raw)
        for _ in range(40):
            fuzzed[rng.randrange(0, min(len(fuzzed), 4096))] = rng.randrange(256)
        (out / "h5" / f"fuzzed{i}.h5").write_bytes(bytes(fuzzed))
    cases["3 fuzzed .h5 files (40 byte flips each)"] = ("keras", out / "h5")
    for label, (scanner, folder) in cases.items():
        seconds, result = _timed([sys.executable, "-c", ONE_SCANNER, scanner, str(folder), repo], 600)
        rss, _, findings = result.partition(" ")
        print(f"{label:55s} {scanner:12s} {seconds:8.2f} s  peak RSS {rss:>5s} MB  findings {findings}")
    for name in ("json/tokenizer_config.json", "st/model.safetensors"):
        seconds, _ = _timed([sys.executable, "-c", OLD_DEPTH, str(out / name)], 60)
        print(f"reference: previous regex depth check on {name}: "
              + ("> 60 s (killed)" if seconds == float("inf") else f"{seconds:.2f} s"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--tensors", type=int, default=256)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--bombs", action="store_true", help="hostile inputs instead of the 2 GB file")
    args = ap.parse_args()
    if args.bombs:
        bombs()
        return
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
