"""`auditor batch` with the local process pool: verdicts, summary, resume, crashes, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import batch_support
import pytest
from approvals_support import clean_model
from batch_support import fleet

from auditor import batch
from auditor.batch import plan

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditor", "batch", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def verdicts(out: Path) -> dict[str, str]:
    summary = json.loads((out / "summary.json").read_text())
    return {Path(t["target"]).name: t["verdict"] or t["status"] for t in summary["targets"]}


def test_folder_of_models(tmp_path: Path) -> None:
    models = fleet(tmp_path)
    out = tmp_path / "out"
    run = cli(str(models), "--out", str(out), "--workers", "2", "--format", "sarif")
    assert run.returncode == 2, run.stderr        # one target could not be audited
    found = verdicts(out)
    assert found.pop("corrupt") in ("warn", "fail")
    assert found == {"clean-0": "pass", "clean-1": "pass", "clean-2": "pass", "clean-3": "pass",
                     "evil-pickle": "fail", "models--acme--broken": "error"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "auditor.batch-summary/v1" and summary["counts"]["error"] == 1
    assert [t["status"] for t in summary["targets"]][0] == "error"                  # failures first
    assert "no snapshot" in summary["targets"][0]["error"] and "no snapshot" in run.stderr
    assert summary["targets"][1]["verdict"] == "fail"
    evil = next(t for t in summary["targets"] if t["target"].endswith("evil-pickle"))
    result = json.loads((out / evil["outputs"]["json"]).read_text())
    assert any(f["rule"] == "PICKLE-GLOBAL-DANGEROUS" for f in result["findings"])
    assert (out / evil["outputs"]["sarif"]).is_file()
    md = (out / "summary.md").read_text()
    assert md.index("evil-pickle") < md.index("clean-0") and "PICKLE-GLOBAL-DANGEROUS" in md


def test_list_file_with_policies_comments_and_a_missing_target(tmp_path: Path) -> None:
    models = fleet(tmp_path, clean=2)
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# nightly\nmodels/clean-0\n{models / 'clean-1'} strict\n\n'{tmp_path}/no such model'\n")
    out = tmp_path / "out"
    run = cli(str(listing), "--out", str(out), "-q")
    assert run.returncode == 2 and run.stderr == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["targets"][0]["status"] == "error" and "no such file or folder" in summary["targets"][0]["error"]
    assert {t["policy"] for t in summary["targets"]} == {"default", "strict"}
    assert "## Could not be audited" in (out / "summary.md").read_text()


def test_exit_1_when_a_target_fails_and_0_when_all_pass(tmp_path: Path) -> None:
    models = fleet(tmp_path, clean=2)
    (models / "models--acme--broken" / "snapshots").rmdir()
    (models / "models--acme--broken").rmdir()
    assert cli(str(models), "--out", str(tmp_path / "a"), "-q").returncode == 1
    (tmp_path / "ok").mkdir()
    clean_model(tmp_path / "ok" / "m")
    assert cli(str(tmp_path / "ok"), "--out", str(tmp_path / "b"), "-q").returncode == 0


def _run(jobs: list[plan.Job], out: Path, **kw) -> dict:  # type: ignore[no-untyped-def]
    return batch.run(jobs, out, workers=2, **kw)


def test_resume_skips_what_is_current(tmp_path: Path) -> None:
    models = fleet(tmp_path, clean=3)
    jobs = plan.read_targets(str(models))
    out = tmp_path / "out"
    first = _run(jobs, out)
    assert first["reused"] == 0 and first["total"] == 6
    again = _run(jobs, out)
    assert again["reused"] == 5      # the one that could not be audited is tried again
    assert {Path(t["target"]).name for t in again["targets"] if not t["reused"]} == {"models--acme--broken"}
    (models / "clean-1" / "config.json").write_text('{"model_type": "gpt2"}\n')   # changed files
    (out / next(t for t in first["targets"] if t["target"].endswith("clean-2"))["outputs"]["json"]).write_text("{}")
    third = _run(jobs, out)
    assert {Path(t["target"]).name for t in third["targets"] if not t["reused"]} == {"models--acme--broken", "clean-1",
                                                                                       "clean-2"}
    forced = _run(jobs, out, force=True)
    assert forced["reused"] == 0
    assert [(t["target"], t["verdict"]) for t in forced["targets"]] == [(t["target"], t["verdict"])
                                                                         for t in first["targets"]]


def test_rules_or_policy_change_redoes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    clean_model(models / "m")
    (models / "m" / "README.md").write_text("no license here\n")      # LICENSE-MISSING: medium
    policy = tmp_path / "team.yaml"
    policy.write_text("name: team\nfail_on: critical\n")
    jobs = plan.read_targets(str(models), policy=str(policy))
    out = tmp_path / "out"
    _run(jobs, out)
    assert _run(jobs, out)["reused"] == 1
    policy.write_text("name: team\nfail_on: medium\n")
    redo = _run(jobs, out)
    assert redo["reused"] == 0 and redo["counts"]["fail"] == 1
    state = json.loads(plan.state_path(out, jobs[0]).read_text())
    state["rules_digest"] = "0" * 64                 # as if written under other rules
    plan.state_path(out, jobs[0]).write_text(json.dumps(state))
    assert _run(jobs, out)["reused"] == 0


def test_a_worker_that_always_dies_is_reported_and_the_rest_complete(tmp_path: Path) -> None:
    models = fleet(tmp_path, clean=3)
    clean_model(models / "crash-always")
    result = _run(plan.read_targets(str(models)), tmp_path / "out", task=batch_support.crash_always)
    by_name = {Path(t["target"]).name: t for t in result["targets"]}
    assert by_name["crash-always"]["status"] == "error" and "worker process died" in by_name["crash-always"]["error"]
    assert [by_name[f"clean-{i}"]["verdict"] for i in range(3)] == ["pass"] * 3
    assert by_name["evil-pickle"]["verdict"] == "fail"


def test_a_worker_that_dies_once_is_retried(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for i in range(3):
        clean_model(models / f"m{i}", seed=i)
    clean_model(models / "crash-once")
    result = _run(plan.read_targets(str(models)), tmp_path / "out", task=batch_support.crash_once)
    assert (models / ".crash-once.crashed").is_file()
    assert result["counts"] == {"pass": 4, "warn": 0, "fail": 0, "error": 0}


def test_memory_limit_applies_to_workers(tmp_path: Path) -> None:
    models = tmp_path / "models"
    clean_model(models / "m")
    jobs = plan.read_targets(str(models))
    limited = batch.run(jobs, tmp_path / "out", workers=1, memory=256 << 20, task=batch_support.hog_memory, force=True)
    [entry] = limited["targets"]
    assert entry["status"] == "error", entry            # 512 MiB cannot be had under a 256 MiB limit
    roomy = batch.run(jobs, tmp_path / "out2", workers=1, memory=4 << 30, task=batch_support.hog_memory, force=True)
    assert roomy["targets"][0]["verdict"] == "pass", roomy["targets"][0]


@pytest.mark.parametrize("content,message", [
    ("", "no targets"),
    ("a b c\n", "expected `TARGET [POLICY]`"),
    ("'unterminated\n", "No closing quotation"),
])
def test_bad_target_lists(tmp_path: Path, content: str, message: str) -> None:
    listing = tmp_path / "t.txt"
    listing.write_text(content)
    run = cli(str(listing), "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_bad_policy_and_missing_list(tmp_path: Path) -> None:
    models = tmp_path / "models"
    clean_model(models / "m")
    run = cli(str(models), "--out", str(tmp_path / "out"), "--policy", "no-such-policy")
    assert run.returncode == 2 and "no-such-policy" in run.stderr and not (tmp_path / "out").exists()
    run = cli(str(tmp_path / "missing.txt"), "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and "no such target list" in run.stderr
    assert os.listdir(tmp_path) == ["models"]
