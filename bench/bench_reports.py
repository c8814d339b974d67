"""Report rendering at scale: `auditor report BIG.json --format F` for every format, whole process
(parse the saved result, render, write), best of 3, peak RSS.

References in the same run: re-rendering the canonical JSON (`--format json`: the floor every format pays
to load a result) and a plain CycloneDX BOM of the same files built by cyclonedx-python-lib alone (what
our BOM costs beyond the library: modelCard, declarations, vulnerabilities, escaping).

    python bench/bench_reports.py [--files 10000] [--findings 2000]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AUDITOR, best, workdir  # noqa: E402

LIB_ONLY = """
import json, sys
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
data = json.load(open(sys.argv[1]))
files = [Component(type=ComponentType.FILE, name=f["path"], bom_ref=f"file-{i}",
                   hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f["sha256"])])
         for i, f in enumerate(data["files"])]
model = Component(type=ComponentType.MACHINE_LEARNING_MODEL, name="model", bom_ref="model", components=files)
text = make_outputter(Bom(components=[model]), OutputFormat.JSON, SchemaVersion.V1_6).output_as_string()
open(sys.argv[2], "w").write(text)
"""


def big_result(n_files: int, n_findings: int) -> dict:
    from auditor import rules
    from auditor.pipeline import audit
    from auditor.reports import json_report
    from auditor.workflows.demo import build_risky

    out = workdir("reports")
    base = json_report.to_dict(audit(str(build_risky(out / "risky"))))
    ids = sorted(rules.catalog())
    base["files"] = [{"path": f"shard-{i:05d}/weights-{i}.safetensors", "size": 1_000_000 + i,
                      "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "format": "safetensors",
                      "extension_format": "safetensors", "publisher_sha256": "", "publisher_git_sha1": "",
                      "error": ""} for i in range(n_files)]
    base["findings"] = [{"rule": ids[i % len(ids)], "severity": ["info", "low", "medium", "high", "critical"][i % 5],
                         "title": f"synthetic finding {i}", "file": base["files"][i % n_files]["path"],
                         "location": f"line {i % 400 + 1}", "evidence": "x" * 200 + " <b>&amp;</b> \u202e",
                         "scanner": "bench", "references": [], "engine": "auditor", "waived": False, "waiver": ""}
                        for i in range(n_findings)]
    return base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=2_000)
    args = parser.parse_args()
    out = workdir("reports")
    src = out / "big.json"
    src.write_text(json.dumps(big_result(args.files, args.findings)))
    from auditor import reports

    rows = []
    floor_t, floor_m = best([*AUDITOR, "report", str(src), "--format", "json", "-o", str(out / "big.out.json")])
    lib_t, lib_m = best([sys.executable, "-c", LIB_ONLY, str(src), str(out / "lib-only.cdx.json")])
    rows.append(("json (reference: load + re-render)", floor_t, floor_m, "1.00x json"))
    rows.append(("cyclonedx-python-lib alone, files only (reference)", lib_t, lib_m, ""))
    for fmt in reports.FORMATS:
        if fmt == "json":
            continue
        target = out / f"big{reports.get(fmt).EXTENSION}"
        t, m = best([*AUDITOR, "report", str(src), "--format", fmt, "-o", str(target)])
        ratio = f"{t / floor_t:.2f}x json" + (f", {t / lib_t:.2f}x lib-only BOM" if fmt.startswith("cyclonedx") else "")
        rows.append((fmt, t, m, ratio + f"; {target.stat().st_size / 1e6:.1f} MB"))
    print(f"result: {args.files} files, {args.findings} findings ({src.stat().st_size / 1e6:.1f} MB JSON)")
    print("| format | seconds | peak RSS MB | ratio; output size |")
    print("|---|---|---|---|")
    for name, t, m, ratio in rows:
        print(f"| {name} | {t:.2f} | {m:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
