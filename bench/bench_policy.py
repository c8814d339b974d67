"""Policy gating, waivers and `auditor ci` planning: what they add to an audit.

    python bench/bench_policy.py

1. Whole process `auditor scan` of the clean demo with the `default` preset, with a user policy file
   (schema-validated with jsonschema) and with a waivers file: the cost of validation at start-up.
2. `policy.gate` (overrides, waivers, claims, requirements, verdict) on 50,000 synthetic findings with
   200 waivers, against what the pipeline did before gating (claims + the threshold decision).
3. `ci.plan` on a git repository with 300 manifest entries and 1,000 changed files, against the
   `git diff --name-only` it runs (the reference: planning should cost little more than git itself).
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AUDITOR, best, best_of  # noqa: E402

from auditor import rules  # noqa: E402
from auditor.judge import claims as evidence
from auditor.judge import policy, waivers
from auditor.model import FileRecord, Finding, Severity, Snapshot  # noqa: E402
from auditor.workflows import ci, demo

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org"}


def startup(tmp: Path) -> None:
    model = demo.build_clean(tmp / "clean")
    user_policy = tmp / "policy.yaml"
    user_policy.write_text("name: mine\nfail_on: medium\noverrides:\n  SIGNATURE-ABSENT: info\n"
                           "formats: {deny: [pickle]}\n")
    waiver_file = tmp / "waivers.yaml"
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    waiver_file.write_text(f"- rule: SIGNATURE-*\n  reason: bench\n  owner: bench\n  expires: {later}\n")
    out = str(tmp / "r.json")
    base = [*AUDITOR, "scan", str(model), "-q", "-o", out]
    rows = [("preset `default`", best(base)), ("user policy file", best([*base, "--policy", str(user_policy)])),
            ("preset + waivers file", best([*base, "--waivers", str(waiver_file)]))]
    print("\n| whole process, clean demo | wall | peak RSS |\n|---|---|---|")
    for name, (wall, rss) in rows:
        print(f"| {name} | {wall:.2f} s ({wall / rows[0][1][0]:.2f}x) | {rss:.0f} MB |")


def gating() -> None:
    catalog = sorted(rules.catalog())[:40]
    findings = [Finding(rule=catalog[i % len(catalog)], severity=Severity(i % 5), title="t",
                        file=f"dir{i % 50}/file{i % 500}.bin", location=str(i)) for i in range(50_000)]
    later = dt.date.today() + dt.timedelta(days=30)
    entries = [{"rule": catalog[i % len(catalog)], "file": f"dir{i % 50}/*", "reason": "bench", "owner": "b",
                "expires": later.isoformat()} for i in range(200)]
    parsed = waivers.parse(entries, "bench")
    chosen = policy.load("strict")
    snap = Snapshot(root=tempfile.gettempdir(), kind="local-folder", target="bench")
    files = tuple(FileRecord(path=f"dir{i % 50}/file{i}.bin", size=1, sha256="", format="safetensors")
                  for i in range(500))
    plain = best_of(lambda: (evidence.build(snap, files, findings, set()), policy.decide(chosen, findings)))
    gated = best_of(lambda: policy.gate(chosen, findings, snapshot=snap, files=files, facts={}, scanners_ran=set(),
                                      extra_waivers=parsed))
    print("\n| 50,000 findings, 200 waivers | time | ratio |\n|---|---|---|")
    print(f"| before gating: `evidence.build` + `policy.decide` (reference) | {plain * 1000:.0f} ms | 1x |")
    print(f"| `policy.gate` (overrides, waivers, claims, requirements, verdict) | {gated * 1000:.0f} ms | "
          f"{gated / plain:.1f}x |")


def planning(tmp: Path) -> None:
    root = tmp / "repo"
    root.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, env=GIT_ENV, capture_output=True)

    git("init", "-q", "-b", "main")
    for i in range(300):
        (root / "models" / f"m{i}").mkdir(parents=True)
        (root / "models" / f"m{i}" / "config.json").write_text("{}")
    (root / "models.yaml").write_text("models:\n" + "".join(f"  - target: models/m{i}\n" for i in range(300)))
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    for i in range(1000):
        (root / "models" / f"m{i % 300}" / f"shard{i}.safetensors").write_bytes(b"x")
    (root / "models.yaml").write_text("models:\n" + "".join(f"  - target: models/m{i}\n    revision: v2\n"
                                                           for i in range(0, 300, 3))
                                      + "".join(f"  - target: models/m{i}\n" for i in range(300) if i % 3))
    git("add", "-A")
    git("commit", "-q", "-m", "two")
    base = ci.resolve_base(root, "HEAD~1")
    reference = best_of(lambda: subprocess.run(["git", "diff", "--name-only", "-z", base], cwd=root, check=True,
                                             capture_output=True))
    planned = best_of(lambda: ci.plan(root, root / "models.yaml", base, audit_all=False))
    items = len(ci.plan(root, root / "models.yaml", base, audit_all=False).items)
    print("\n| 300 entries, 1,000 changed files | time | ratio |\n|---|---|---|")
    print(f"| `git diff --name-only` (reference) | {reference * 1000:.0f} ms | 1x |")
    print(f"| `ci.plan` ({items} audits planned) | {planned * 1000:.0f} ms | {planned / reference:.1f}x |")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        startup(Path(tmp))
        gating()
        planning(Path(tmp))


if __name__ == "__main__":
    main()
