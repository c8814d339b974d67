"""Each report format against the JSON report, at 1k, 10k and 100k files: two measures.

- render: `reports.get(F).render(result)` in a child that has already loaded the saved result (the
  renderer's own time);
- user: the whole process the user waits for, `auditor report SAVED.json --format F -o OUT` (start-up, load,
  render, atomic write), with its peak RSS from os.wait4; as the best of N against JSON's best, and as the median
  over the rounds of each round's ratio (the runs taken in turn, which a drift of the machine's speed moves less).

The saved result is synthetic but shaped like a real one (built with the model classes): paths of varied
length and depth (some non-ASCII), SHA-256 hashes, several formats, one finding per 20 files with evidence
(some waived), claims, provenance/license/model-card facts. Ratios are against JSON in the same run,
formats interleaved, best of N.
Usage: python bench/bench_reports.py [--repeat N] [--formats a,b] [1000 10000 100000]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AUDITOR, run, workdir  # noqa: E402

FORMATS = ("json", "cyclonedx", "cyclonedx-1.7", "sarif", "markdown", "html", "pdf")

RENDER_CHILD = r"""
import resource, sys, time
from pathlib import Path
from auditor.cli.report import load
from auditor import reports
result = load(sys.argv[1])
render = reports.get(sys.argv[2]).render
t = time.perf_counter()
out = render(result)
if not isinstance(out, (str, bytes)):
    out = "".join(out) if sys.argv[2] != "pdf" else b"".join(out)
print(time.perf_counter() - t, len(out))
"""

_WORDS = ("model", "shards", "tokenizer", "checkpoints", "layers", "onnx", "gguf", "adapter", "lora",
          "权重", "модель", "données", "pesos")
_FORMATS = (("safetensors", ".safetensors"), ("pickle", ".bin"), ("onnx", ".onnx"), ("gguf", ".gguf"),
            ("text", ".json"), ("text", ".py"), ("zip", ".pt"))
_RULES = (("FORMAT-EXTENSION-MISMATCH", "MEDIUM", "Extension does not match the content"),
          ("CODE-NETWORK-CALL", "HIGH", "Code calls the network at import"),
          ("PICKLE-GLOBAL-DANGEROUS", "CRITICAL", "Pickle imports a dangerous callable"),
          ("LICENSE-REGISTRATION", "LOW", "License requires registration"),
          ("INVENTORY-EMPTY-FILE", "INFO", "Empty file"))


def _path(i: int) -> str:
    depth = 1 + i % 4
    parts = [f"{_WORDS[(i * 7 + k) % len(_WORDS)]}-{(i // (10 ** k)) % 100:02d}" for k in range(depth)]
    if i % 50 == 0:
        parts.append("very-long-folder-name-" * 3)
    fmt, ext = _FORMATS[i % len(_FORMATS)]
    return "/".join(parts) + f"/part-{i:06d}{ext}"


def make_result(n: int):  # type: ignore[no-untyped-def]
    from auditor.model import AuditResult, Claim, ClaimStatus, FileRecord, Finding, Severity, Snapshot, Verdict
    files = tuple(FileRecord(path=_path(i), size=(i * 7919) % (1 << 34), sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                             format=_FORMATS[i % len(_FORMATS)][0], extension_format=_FORMATS[(i + i // 3) % len(_FORMATS)][0],
                             publisher_sha256=hashlib.sha256(str(i).encode()).hexdigest() if i % 3 == 0 else "")
                  for i in range(n))
    findings = []
    for i in range(0, n, 20):
        rule, severity, title = _RULES[(i // 20) % len(_RULES)]
        findings.append(Finding(rule=rule, severity=Severity[severity], title=title, file=files[i].path,
                                location=f"line {i % 400 + 1}" if i % 40 else f"member data.pkl, opcode #{i} @ byte {i * 3}",
                                evidence=f"urllib.request.urlopen('https://example.com/{i}') in {files[i].path}",
                                scanner="code" if "CODE" in rule else "inventory", waived=i % 200 == 0,
                                waiver="accepted by sec-team (ticket 42)" if i % 200 == 0 else ""))
    claims = (Claim("integrity", "Files are pinned to a commit and match the publisher's hashes", ClaimStatus.SUPPORTED,
                    f"{n} file(s) match", ("commit:0123456789abcdef0123456789abcdef01234567",)),
              Claim("passive-weights", "No file runs code when it is loaded", ClaimStatus.REFUTED,
                    "PICKLE-GLOBAL-DANGEROUS in a pickle", ("PICKLE-GLOBAL-DANGEROUS:x.bin",)),
              Claim("runtime", "A sandboxed load showed zero network attempts", ClaimStatus.NOT_ASSESSED,
                    "the check behind it did not run (runtime)"))
    facts = {"provenance": {"publisher": {"org": "Example Org", "entity": "Example Org Ltd", "country": "US"},
                            "lineage": [{"repo_id": "base-org/base-model", "relation": "finetune", "depth": 1}],
                            "effective_origin": {"org": "Base Org", "country": "US"},
                            "signature": {"status": "absent", "detail": "no model signature file"}},
             "license": {"model": {"id": "apache-2.0", "name": "Apache 2.0", "spdx": "Apache-2.0"},
                         "obligations": [{"term": "attribution", "summary": "Keep the NOTICE file", "source": "LICENSE"}]},
             "model_card": {"card": {"pipeline_tag": "text-generation"}, "config": {"model_type": "llama"}}}
    counts = {s.label: sum(1 for f in findings if f.severity is s) for s in Severity}
    snapshot = Snapshot(root="/tmp/bench-model", kind="hub", target="hf://example-org/bench-model",
                        repo_id="example-org/bench-model", resolved_revision="0123456789abcdef0123456789abcdef01234567",
                        endpoint="https://huggingface.co", hosts_contacted=("huggingface.co",))
    return AuditResult(target="hf://example-org/bench-model", snapshot=snapshot, files=files, findings=tuple(findings),
                       verdict=Verdict("fail", "default", ("1 critical finding",), counts), claims=claims, facts=facts,
                       timings={"total": 1.0}, tool_version="bench", started_at="2026-01-01T00:00:00+00:00")


def saved_result(n: int, folder: Path) -> Path:
    from auditor import atomic
    from auditor.reports import json_report
    path = folder / f"result-{n}.json"
    if not path.exists():
        atomic.write(path, json_report.render(make_result(n)))
    return path


def render_time(saved: Path, fmt: str) -> tuple[float, int]:
    proc = subprocess.run([sys.executable, "-c", RENDER_CHILD, str(saved), fmt], capture_output=True, text=True,
                          check=True, env=os.environ)
    elapsed, size = proc.stdout.split()
    return float(elapsed), int(size)


def user_time(saved: Path, fmt: str, out: Path) -> tuple[float, float, int]:
    target = out / f"out-{fmt}"
    elapsed, rss = run([*AUDITOR, "report", str(saved), "--format", fmt, "-o", str(target)])
    return elapsed, rss, target.stat().st_size


def measure(n: int, formats: tuple[str, ...], repeat: int, folder: Path) -> dict[str, dict[str, float]]:
    """Per format: the best render and user times, the peak RSS, the output's size, and `paired`: the median over
    the rounds of the format's user time over the JSON's in the same round (a round runs the formats in turn, so
    a drift of the machine's speed moves both sides of a round's ratio, not one best against another)."""
    saved = saved_result(n, folder)
    best: dict[str, dict[str, float]] = {f: {"render": 1e9, "user": 1e9, "rss": 0.0, "bytes": 0} for f in formats}
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    for _ in range(repeat):
        users: dict[str, float] = {}
        for fmt in formats:            # interleaved: a load spike hits every format, not one
            r, _size = render_time(saved, fmt)
            u, rss, size = user_time(saved, fmt, folder)
            b = best[fmt]
            b["render"], b["user"] = min(b["render"], r), min(b["user"], u)
            b["rss"], b["bytes"] = max(b["rss"], rss), size
            users[fmt] = u
        for fmt in formats:
            ratios[fmt].append(users[fmt] / users["json"])
    for fmt in formats:
        best[fmt]["paired"] = statistics.median(ratios[fmt])
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    formats = tuple(args.formats.split(","))
    if "json" not in formats:
        formats = ("json", *formats)
    folder = workdir("reports")
    print("| files | format | render s | render x JSON | user s | user x JSON | user x JSON, median of rounds "
          "| peak RSS MiB | output bytes | load |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in args.sizes:
        best = measure(n, formats, args.repeat, folder)
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
        for fmt in formats:
            b, j = best[fmt], best["json"]
            print(f"| {n:,} | {fmt} | {b['render']:.2f} | {b['render'] / j['render']:.2f} | {b['user']:.2f} | "
                  f"{b['user'] / j['user']:.2f} | {b['paired']:.2f} | {b['rss']:.0f} | {int(b['bytes']):,} | {load} |",
                  flush=True)
    print(f"\npython {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}, best of {args.repeat}, load = 1/5/15-min average")


if __name__ == "__main__":
    main()
