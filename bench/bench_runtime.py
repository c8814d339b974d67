"""Runtime check: the sandbox's start-up cost, `scan --runtime` on a tiny Llama, and the shrunken-config
load of a 7B-shaped Llama config (time and peak RSS, the sandboxed child included).

    python bench/bench_runtime.py [--repeat 3] [--no-append]

Results are appended to bench/RESULTS.md under "Runtime check".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import AUDITOR, best, workdir  # noqa: E402

SEVEN_B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}

SHRUNK_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[2])
from auditor import runtime
from auditor.model import FileRecord, Snapshot
folder = sys.argv[1]
files = (FileRecord("config.json", 1000, "", "text"),
         FileRecord("model-00001-of-00002.safetensors", 9_976_576_152, "", "safetensors"),
         FileRecord("model-00002-of-00002.safetensors", 3_500_296_328, "", "safetensors"))
findings, fact = runtime.check(Snapshot(root=folder, kind="local-folder", target=folder), files)
assert fact["status"] == "completed" and fact["forward"], fact
print(json.dumps({"seconds": fact["seconds"], "child_peak_rss_mb": fact["child_peak_rss_mb"]}))
"""


def build_models(out: Path) -> tuple[Path, Path]:
    import torch
    import transformers
    tiny, big = out / "tiny-llama", out / "llama-7b-shape"
    for folder in (tiny, big):
        shutil.rmtree(folder, ignore_errors=True)
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(tiny)
    big.mkdir(parents=True)
    config_7b = {**json.loads((tiny / "config.json").read_text()), **SEVEN_B}
    (big / "config.json").write_text(json.dumps(config_7b))
    return tiny, big


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--build", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_models(Path(args.build))
        return
    from auditor import sandbox
    reason = sandbox.unavailable_reason()
    if reason:
        raise SystemExit(f"sandbox unavailable: {reason}")
    out = workdir("runtime")
    # built in a child: torch in this process would inflate every later child's ru_maxrss (it survives fork)
    subprocess.run([sys.executable, __file__, "--build", str(out)], check=True, capture_output=True)
    tiny, big = out / "tiny-llama", out / "llama-7b-shape"

    starts = []
    for _ in range(10):
        t = time.perf_counter()
        assert sandbox.run("def main(request, emit):\n    emit(1)\n", {}).ok
        starts.append(time.perf_counter() - t)
    plain, _ = best([sys.executable, "-I", "-c", "pass"], args.repeat)
    static_t, static_rss = best([*AUDITOR, "scan", str(tiny), "-q", "--no-modelscan"], args.repeat)
    runtime_t, runtime_rss = best([*AUDITOR, "scan", str(tiny), "-q", "--no-modelscan", "--runtime"], args.repeat)
    report = out / "tiny-runtime.json"
    subprocess.run([*AUDITOR, "scan", str(tiny), "-q", "--no-modelscan", "--runtime", "-o", str(report)], check=False)
    tiny_child = json.loads(report.read_text())["facts"]["runtime"]["child_peak_rss_mb"]
    script = out / "shrunk.py"
    script.write_text(SHRUNK_SCRIPT)
    root = str(Path(__file__).resolve().parent.parent)
    shrunk_t, shrunk_rss = best([sys.executable, str(script), str(big), root], args.repeat)
    shrunk = subprocess.run([sys.executable, str(script), str(big), root], check=True, capture_output=True, text=True)
    big_child = json.loads(shrunk.stdout.strip().splitlines()[-1])["child_peak_rss_mb"]

    rows = [
        ("sandbox start-up: bwrap + python + launcher, trivial payload (best of 10)",
         f"{min(starts):.3f} s", f"plain `python -I -c pass`: {plain:.3f} s"),
        ("`scan TINY --no-modelscan` (static only)", f"{static_t:.2f} s", f"{static_rss:.0f} MB"),
        ("`scan TINY --no-modelscan --runtime` (tiny Llama, 1 layer, real weights, forward)",
         f"{runtime_t:.2f} s", f"auditor {runtime_rss:.0f} MB, sandboxed child {tiny_child:.0f} MB"),
        ("runtime check of a 7B-shaped Llama config (32 layers x 4096, 13.5 GB of weights listed): shrunk to "
         "1 layer x 64, random weights, forward", f"{shrunk_t:.2f} s",
         f"auditor {shrunk_rss:.0f} MB, sandboxed child {big_child:.0f} MB"),
    ]
    table = ["| measurement | time | peak RSS / reference |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table)
    print(text)
    if not args.no_append:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        load = os.getloadavg()[0]
        note = (f"Peak RSS of the auditor (wait4) and of the sandboxed child (its own getrusage, reported in "
                f"facts.runtime.child_peak_rss_mb: the PID namespace hides it from wait4). The runtime cost is "
                f"dominated by importing torch and transformers inside the sandbox; the static audit of the same "
                f"folder is the reference. Load average during the run: {load:.1f} on {os.cpu_count()} cores.")
        with results.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Runtime check (`python bench/bench_runtime.py --repeat {args.repeat}`)\n\n"
                     f"{text}\n\n{note}\n")


if __name__ == "__main__":
    main()
