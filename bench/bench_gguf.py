"""Issue 4 benchmark: reading GGUF metadata with the auditor's bounded reader vs the gguf package.

Run: python bench/bench_gguf.py [--vocab 150000]
A GGUF written by gguf.GGUFWriter with a Llama-3-sized vocabulary (tokens, scores, merges), a chat
template and a few tensors. Each reader runs in a fresh process (best of 3) and reports its own time;
peak RSS is the child's. The file is deleted afterwards.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from _common import workdir

MAKE = """
import sys, numpy as np, gguf
n = int(sys.argv[2])
w = gguf.GGUFWriter(sys.argv[1], "llama")
w.add_name("bench"); w.add_license("apache-2.0")
w.add_chat_template("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")
w.add_token_list([f"tok{i}" for i in range(n)]); w.add_token_scores([0.0] * n)
w.add_token_merges([f"a{i} b{i}" for i in range(n)])
for i in range(32):
    w.add_tensor(f"blk.{i}.weight", np.zeros((256, 256), np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"""

OURS = """
import sys, time
from pathlib import Path
from auditor import rules
from auditor.model import FileRecord, Options, Snapshot
from auditor.scanners import ScanContext, gguf
path = Path(sys.argv[1]); rules.catalog()
import jinja2  # imported by every audit's template checks; not part of the reader's cost
ctx = ScanContext(Snapshot(root=str(path.parent), kind="local-file", target=str(path)),
                  (FileRecord(path.name, path.stat().st_size, "", "gguf"),), Options())
start = time.perf_counter(); findings = list(gguf.scan(ctx)); print(time.perf_counter() - start, len(findings))
"""

REFERENCE = """
import sys, time
import gguf
start = time.perf_counter(); reader = gguf.GGUFReader(sys.argv[1]); n = len(reader.fields)
print(time.perf_counter() - start, n)
"""


def measure(code: str, path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(proc.stderr.read().decode() if proc.stderr else "child failed")
        out = proc.stdout.read().decode().split() if proc.stdout else ["nan"]
        runs.append((float(out[0]), usage.ru_maxrss / 1024))
    return min(t for t, _ in runs), max(r for _, r in runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=150000)
    args = ap.parse_args()
    path = workdir("gguf") / "bench.gguf"
    subprocess.run([sys.executable, "-c", MAKE, str(path), str(args.vocab)], check=True)
    try:
        t_ours, rss_ours = measure(OURS, path)
        t_ref, rss_ref = measure(REFERENCE, path)
        print(f"file: {path.stat().st_size / 1e6:.1f} MB, vocabulary {args.vocab} (tokens, scores, merges)")
        print(f"auditor gguf scanner: {t_ours:.3f} s, peak RSS {rss_ours:.0f} MB")
        print(f"gguf.GGUFReader:      {t_ref:.3f} s, peak RSS {rss_ref:.0f} MB  ({t_ref / t_ours:.0f}x slower)")
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
