"""Issue 7 benchmark: the endpoints and code scanners on big and many files.

Run: python bench/bench_code.py [--tokenizer-mb 30]
Measures, in the same run, best of 3, files in the page cache:
- endpoints on a generated ~30 MB tokenizer.json (byte-level BPE vocab + merges, a few URLs inside),
  against `grep -oE` of URLs over the same file (GNU grep: the reference for a plain text search)
  and against `python -c json.load` (what any tokenizer loader pays just to parse it);
- the code scanner's analysis (pyast) on every .py of the installed torch's nn, optim, distributions,
  utils and hub (real code: modeling, plus torch.hub downloads and cpp_extension builds), against bare
  `ast.parse` of the same sources; with the hits by category, for the record.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import workdir

ENDPOINTS_ONLY = """
import sys, time
from auditor.scanners import endpoints
path = sys.argv[1]
endpoints.classifier()
t = time.perf_counter()
text, problem = endpoints.read_bounded(path, 0)
c = endpoints.Collector({"CN"})
c.add_text("tokenizer.json", text, endpoints.context_for("tokenizer.json", text))
found = list(c.findings())
print(time.perf_counter() - t, len(found), problem or "-")
"""

WHOLE_AUDIT = """
import sys
from auditor.pipeline import audit
from auditor.model import Options
r = audit(sys.argv[1], Options(engines=("auditor",)))
t = r.timings
print(f"scan.endpoints {t['scan.endpoints']:.2f} s, scan.code {t['scan.code']:.2f} s, total {t['total']:.2f} s")
"""

JSON_LOAD = "import json, sys, time; t = time.perf_counter(); json.load(open(sys.argv[1])); print(time.perf_counter() - t)"


def make_tokenizer(path: Path, target_mb: int) -> None:
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzĠĊ0123456789"
    vocab: dict[str, int] = {}
    merges: list[str] = []
    target = target_mb * 1024 * 1024
    size = 0
    while size < target:
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 12)))
        if token not in vocab:
            vocab[token] = len(vocab)
            size += len(token) * 2 + 12
        merges.append(f"{token[:1]} {token[1:]}")
    vocab["https://qianwen-res.oss-cn-beijing.aliyuncs.com/vocab"] = len(vocab)
    vocab["www.example.org"] = len(vocab)
    data = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": merges},
            "normalizer": {"type": "NFC"}, "decoder": {"type": "ByteLevel"}}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def best_of(cmd: list[str], repeat: int = 3) -> tuple[float, str]:
    results = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        results.append((time.perf_counter() - start, out.stdout.strip()))
    return min(results, key=lambda r: float(r[1].split()[0]) if r[1][:1].isdigit() else r[0])


def bench_python() -> None:
    import ast

    import torch

    from auditor.parsers import pyast

    base = Path(torch.__file__).parent
    files = sorted(f for sub in ("nn", "optim", "distributions", "utils") for f in (base / sub).rglob("*.py"))
    files.append(base / "hub.py")
    sources = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    total_mb = sum(len(s) for s in sources) / 1e6
    times = {}
    for label, fn in (("ast.parse", ast.parse), ("pyast.analyze", pyast.analyze)):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            for s in sources:
                fn(s)
            runs.append(time.perf_counter() - t)
        times[label] = min(runs)
    counts: dict[str, int] = {}
    for s in sources:
        for hit in pyast.analyze(s).hits:
            counts[hit.category] = counts.get(hit.category, 0) + 1
    print(f"torch {torch.__version__} nn/optim/distributions/utils/hub: {len(files)} .py files, {total_mb:.1f} MB")
    print(f"  ast.parse only      {times['ast.parse']:.2f} s")
    print(f"  pyast.analyze       {times['pyast.analyze']:.2f} s  ({times['pyast.analyze'] / times['ast.parse']:.2f}x "
          f"ast.parse, {total_mb / times['pyast.analyze']:.1f} MB/s)")
    print(f"  hits by category    {json.dumps(dict(sorted(counts.items())))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer-mb", type=int, default=30)
    args = parser.parse_args()
    out = workdir("code")
    tok = out / "tokenizer.json"
    make_tokenizer(tok, args.tokenizer_mb * 2 // 3)   # the size estimate runs ~1.5x over
    size_mb = tok.stat().st_size / 1024 / 1024
    tok.read_bytes()   # warm the page cache
    ours, ours_out = best_of([sys.executable, "-c", ENDPOINTS_ONLY, str(tok)])
    ours_s, n_found, problem = ours_out.split()
    grep = shutil.which("grep")
    grep_s = min(_time([grep, "-oE", r"https?://[^\"' ]+", str(tok)]) for _ in range(3)) if grep else float("nan")
    _t, load_out = best_of([sys.executable, "-c", JSON_LOAD, str(tok)])
    print(f"tokenizer.json {size_mb:.1f} MB")
    print(f"  endpoints scan      {float(ours_s):.2f} s ({n_found} findings, limit: {problem})")
    print(f"  grep -oE URLs       {grep_s:.2f} s  -> ratio {float(ours_s) / grep_s:.1f}x")
    print(f"  json.load           {float(load_out):.2f} s  -> ratio {float(ours_s) / float(load_out):.1f}x")
    whole = subprocess.run([sys.executable, "-c", WHOLE_AUDIT, str(out)], capture_output=True, text=True, check=False)
    print(f"  whole audit of that folder: {whole.stdout.strip() or whole.stderr.strip()[-300:]}")
    bench_python()


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
