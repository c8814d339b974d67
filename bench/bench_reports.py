"""Each report format's time and peak RSS against the JSON report, at 1k, 10k and 100k files.

A synthetic AuditResult (files with hashes, one finding per 20 files) is rendered by each format in its own
child process (so peak RSS is the format's own); ratios are against the JSON report measured in the same run.
Usage: python bench/bench_reports.py [1000 10000 100000]  (writes a Markdown table on stdout)
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

FORMATS = ("json", "cyclonedx", "sarif", "markdown", "html", "pdf")

CHILD = r"""
import resource, sys, time
sys.path.insert(0, ".")
from auditor.model import AuditResult, FileRecord, Finding, Severity, Snapshot, Verdict, Claim, ClaimStatus
from auditor import reports
n, fmt = int(sys.argv[1]), sys.argv[2]
files = tuple(FileRecord(path=f"shard-{i // 1000:03d}/part-{i:06d}.safetensors", size=i, sha256=f"{i:064x}",
                         format="safetensors") for i in range(n))
findings = tuple(Finding(rule="FORMAT-EXTENSION-MISMATCH", severity=Severity.MEDIUM, title="Extension does not match",
                         file=files[i].path, location=f"byte {i}", evidence="content is text") for i in range(0, n, 20))
result = AuditResult(target="bench", snapshot=Snapshot(root="/tmp/bench", kind="local-folder", target="bench"),
                     files=files, findings=findings, verdict=Verdict("warn", "default", (), {"medium": len(findings)}),
                     claims=(Claim("integrity", "Files are pinned", ClaimStatus.NOT_ASSESSED, "local"),),
                     facts={}, timings={}, tool_version="bench", started_at="2026-01-01T00:00:00+00:00")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = reports.get(fmt).render(result)
elapsed = time.perf_counter() - t
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(out))
"""


def measure(n: int, fmt: str) -> tuple[float, float, int]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(n), fmt], capture_output=True, text=True, check=True)
    elapsed, rss_kib, size = proc.stdout.split()
    return float(elapsed), int(rss_kib) / 1024, int(size)


def main(sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        results = {fmt: measure(n, fmt) for fmt in FORMATS}
        json_time = results["json"][0]
        for fmt, (elapsed, rss, size) in results.items():
            rows.append((n, fmt, elapsed, elapsed / json_time, rss, size))
    print("| files | format | seconds | x JSON | peak RSS MiB | output bytes |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, fmt, elapsed, ratio, rss, size in rows:
        print(f"| {n:,} | {fmt} | {elapsed:.2f} | {ratio:.2f} | {rss:.0f} | {size:,} |")
    print("\n" + json.dumps({"python": sys.version.split()[0], "time": time.strftime("%Y-%m-%d")}))



if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000, 100000])
