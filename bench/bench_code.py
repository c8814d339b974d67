"""Benchmark: the endpoints and code scanners on big and many files, and on hostile small ones.

Run: python bench/bench_code.py [--tokenizer-mb 30]
Measures, in the same run, best of 3, files in the page cache:
- endpoints on a generated ~30 MB tokenizer.json (byte-level BPE vocab + merges, a few URLs inside),
  against `grep -oE` of URLs over the same file (GNU grep: the reference for a plain text search)
  and against `python -c json.load` (what any tokenizer loader pays just to parse it);
- the code analysis (decode_source + pyast + findings, every file graded as if it were on the
  trust_remote_code load path, the worst case) on every .py of the installed torch and transformers,
  against bare `ast.parse` of the same sources: exceptions (must be none), findings by severity, and
  the high/critical ones by rule (the false-positive budget in RESULTS.md is judged on these);
- folding bombs (a 1 KB file doubling a list 60 times, squaring an int 40 times) and the endpoints
  search of a 50 MB .py: seconds and peak RSS, each in its own process.
"""
from __future__ import annotations

import argparse
import json
import os
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


LIBRARY_SCAN = """
import ast, json, sys, time
from collections import Counter
from pathlib import Path
import torch, transformers
from auditor.parsers import pyast
from auditor.scanners.code import findings_for_source
files = sorted(p for pkg in (torch, transformers) for p in Path(pkg.__file__).parent.rglob("*.py"))
raws = [f.read_bytes() for f in files]
mb = sum(len(r) for r in raws) / 1e6
t = time.perf_counter()
for r in raws:
    try:
        ast.parse(r)
    except (SyntaxError, ValueError):
        pass
bare = time.perf_counter() - t
errors, severities, rules, limits = Counter(), Counter(), Counter(), 0
t = time.perf_counter()
for f, r in zip(files, raws):
    try:
        decoded = pyast.decode_source(r)
        found, analysis = findings_for_source(decoded.text, str(f), role="load")
    except Exception as exc:  # noqa: BLE001 - counted: the benchmark's first figure
        errors[type(exc).__name__] += 1
        continue
    limits += bool(analysis.limit)
    for x in found:
        severities[x.severity.label] += 1
        if x.severity.label in ("high", "critical"):
            rules[x.rule] += 1
ours = time.perf_counter() - t
print(json.dumps({"files": len(files), "mb": round(mb, 1), "torch": torch.__version__,
                  "transformers": transformers.__version__, "ast_parse_s": round(bare, 2),
                  "analysis_s": round(ours, 2), "ratio": round(ours / bare, 2), "exceptions": dict(errors),
                  "limits": limits, "by_severity": dict(severities), "high_or_critical_by_rule": dict(rules)}))
"""

BOMB = """
import resource, sys, time
kind = sys.argv[1]
from auditor.parsers import pyast
t = time.perf_counter()
if kind == "double":
    src = "a0 = [0, 0]\\n" + "".join(f"a{i + 1} = a{i} + a{i}\\n" for i in range(60)) + "exec(str(a60))\\n"
    pyast.analyze(src)
elif kind == "square":
    src = "n0 = 99999999999\\n" + "".join(f"n{i + 1} = n{i} * n{i}\\n" for i in range(40)) + "eval(f'{n40}')\\n"
    pyast.analyze(src)
else:
    from auditor.scanners import endpoints
    path = sys.argv[2]
    c = endpoints.Collector({"CN"})
    with open(path, "rb") as fh:
        from pathlib import Path
        from auditor.model import FileRecord
    class Ctx:
        def path(self, rec):
            return Path(path)
    rec = FileRecord(path="big.py", size=Path(path).stat().st_size, sha256="", format="text")
    list(endpoints._scan_file(Ctx(), rec, c, {}))
    src = str(len(list(c.findings())))
print(f"{time.perf_counter() - t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} {len(src)}")
"""


ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}       # this checkout's auditor, whatever is installed


def bench_python() -> None:
    out = subprocess.run([sys.executable, "-c", LIBRARY_SCAN], capture_output=True, text=True, check=False,
                         env=ENV, cwd=ROOT)
    if out.returncode:
        print("library scan failed:", out.stderr[-2000:])
        return
    data = json.loads(out.stdout)
    print(f"every .py of torch {data['torch']} and transformers {data['transformers']}: {data['files']} files, "
          f"{data['mb']} MB")
    print(f"  ast.parse only      {data['ast_parse_s']:.2f} s")
    print(f"  decode + analyze + findings (as if on the load path) {data['analysis_s']:.2f} s "
          f"({data['ratio']:.2f}x ast.parse)")
    print(f"  exceptions          {data['exceptions'] or 'none'}; files with a work limit hit: {data['limits']}")
    print(f"  findings            {json.dumps(data['by_severity'])}")
    print(f"  high/critical rules {json.dumps(data['high_or_critical_by_rule'])}")


def bench_bombs(out: Path) -> None:
    big = out / "big.py"
    line = "    0,  # " + "x" * 40 + "\n"
    with open(big, "w") as fh:
        fh.write("TABLE = [\n")
        for _ in range(50 * 1024 * 1024 // len(line)):
            fh.write(line)
        fh.write("]\nURL = 'https://api.deepseek.com/v1'\n")
    for kind, args in (("double", []), ("square", []), ("endpoints-50MB-py", [str(big)])):
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", BOMB, kind, *args], capture_output=True, text=True, check=False,
                             env=ENV, cwd=ROOT)
        wall = time.perf_counter() - start
        print(f"  {kind:20s} {res.stdout.strip() or res.stderr.strip()[-300:]}  (seconds, peak RSS MB, -; "
              f"process {wall:.2f} s)")


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
    print("hostile inputs (each in its own process):")
    bench_bombs(out)


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
