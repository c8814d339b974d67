"""Waivers: waived, expired (fails the run), scope, where they come from, bad files, `auditor waivers check`."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import run_cli

from auditor.errors import AuditorError
from auditor.judge import waivers
from auditor.model import Options
from auditor.pipeline import audit
from auditor.reports import json_report
from auditor.workflows import demo

RULE = "FORMAT-EXTENSION-MISMATCH"
TODAY = dt.date.today()
LATER = (TODAY + dt.timedelta(days=90)).isoformat()
PAST = (TODAY - dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean demo plus one medium finding: a .png that is text."""
    folder = demo.build_clean(tmp_path_factory.mktemp("waivers") / "acme__tiny")
    (folder / "preview.png").write_text("a placeholder for the model's preview picture\n")
    return folder


def _waiver(rule: str = RULE, expires: str = LATER, **scope: str) -> str:
    lines = [f"- rule: {rule}"] + [f"  {k}: '{v}'" for k, v in scope.items()]   # quoted: a bare * is YAML
    return "\n".join(lines + ["  reason: the preview is a placeholder text, reviewed", "  owner: ml-platform",
                              f"  expires: {expires}"]) + "\n"


def _file(tmp_path: Path, text: str, name: str = "auditor-waivers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _hit(result):  # type: ignore[no-untyped-def]
    return next(f for f in result.findings if f.rule == RULE)


def test_unexpired_waiver_waives_and_keeps_the_finding(model: Path, tmp_path: Path) -> None:
    path = _file(tmp_path, _waiver(file="*.png"))
    result = audit(str(model), Options(policy="strict", waivers=str(path)))
    hit = _hit(result)
    assert hit.waived and hit.waiver == f"the preview is a placeholder text, reviewed (ml-platform, until {LATER})"
    assert not any(RULE in r for r in result.verdict.reasons)
    assert result.verdict.counts["medium"] == sum(1 for f in result.findings if f.severity.label == "medium"
                                                  and not f.waived)
    assert json_report.to_dict(result)["findings"][[f.rule for f in result.findings].index(RULE)]["waived"] is True


def test_expired_waiver_fails_the_run_and_the_finding_counts_again(model: Path, tmp_path: Path) -> None:
    path = _file(tmp_path, _waiver(expires=PAST))
    result = audit(str(model), Options(policy="default", waivers=str(path)))
    assert not _hit(result).waived
    expired = [f for f in result.findings if f.rule == "WAIVER-EXPIRED"]
    assert len(expired) == 1 and expired[0].severity.label == "high" and expired[0].file == "preview.png"
    assert f"expired on {PAST}" in expired[0].evidence and "ml-platform" in expired[0].evidence
    assert result.verdict.decision == "fail"
    assert any(r.startswith("high: WAIVER-EXPIRED preview.png") for r in result.verdict.reasons)
    assert any(RULE in r for r in audit(str(model), Options(policy="strict", waivers=str(path))).verdict.reasons)


def test_waiver_scope_repo_revision_and_file(model: Path, tmp_path: Path) -> None:
    text = (_waiver(file="*.jpg") + _waiver(repo="other-org/*") + _waiver(revision="0123abc"))
    result = audit(str(model), Options(policy="strict", waivers=str(_file(tmp_path, text))))
    assert not _hit(result).waived and result.verdict.decision == "fail"
    # The repo scope matches the target as typed when there is no repo id (a local folder).
    text = _waiver(repo=f"*{model.name}", file="preview.*")
    result = audit(str(model), Options(policy="strict", waivers=str(_file(tmp_path, text))))
    assert _hit(result).waived


def test_waivers_from_the_policy_and_from_the_working_directory(model: Path, tmp_path: Path) -> None:
    policy_file = _file(tmp_path, "name: with-waivers\nfail_on: medium\nwaivers:\n"
                        + "".join("  " + line + "\n" for line in _waiver().splitlines()), "policy.yaml")
    assert _hit(audit(str(model), Options(policy=str(policy_file)))).waived
    _file(tmp_path, _waiver(expires=PAST))                      # ./auditor-waivers.yaml, found by the CLI
    proc = run_cli("scan", str(model), "-q", "-o", str(tmp_path / "r.json"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [f["rule"] for f in report["findings"] if f["rule"] == "WAIVER-EXPIRED"] == ["WAIVER-EXPIRED"]


@pytest.mark.parametrize("text, expected", [
    ("- rule: FORMAT-EXTENSION-MISMATCH\n  reason: ok then\n  expires: 2030-01-01\n", "entry 1: 'owner' is required"),
    (_waiver(rule="NOPE-NOT-A-RULE"), "entry 1: unknown rule id 'NOPE-NOT-A-RULE'"),
    (_waiver(expires="next-year"), "expires: 'next-year' is not a 'date'"),
    (_waiver(expires="2030-02-31"), "day is out of range for month"),
    (_waiver() + "  ticket: 42\n", "unknown key: 'ticket' was unexpected"),
    ("waivers:\n  - rule: X\n  bad: indent\n", "line 3: expected <block end>"),
    ("just: a mapping\n", "expected a list of waivers"),
])
def test_bad_waivers_file_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(AuditorError) as caught:
        waivers.load_file(path)
    message = str(caught.value)
    assert str(path) in message and expected in message, message


def test_matching_is_by_rule_glob_and_the_latest_expiry_wins(model: Path) -> None:
    result = audit(str(model), Options(policy="strict"))
    parsed = waivers.parse([
        {"rule": "FORMAT-*", "reason": "older review", "owner": "a", "expires": LATER},
        {"rule": RULE, "reason": "newer review", "owner": "b", "expires": TODAY + dt.timedelta(days=200)},
    ], "inline")
    outcome = waivers.apply(result.findings, parsed, result.snapshot)
    hit = next(f for f in outcome.findings if f.rule == RULE)
    assert hit.waived and hit.waiver.startswith("newer review (b, until") and set(parsed) == outcome.used
    assert outcome.expired == []
    # The day after expiry the same waivers no longer hold.
    late = waivers.apply(result.findings, parsed, result.snapshot, today=TODAY + dt.timedelta(days=201))
    assert not next(f for f in late.findings if f.rule == RULE).waived and len(late.expired) == 2


def test_waivers_check_lists_expired_expiring_and_unused(model: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = run_cli("scan", str(model), "-q", "-o", str(report), "--waivers",
                   str(_file(tmp_path, _waiver(), "live.yaml")))
    assert proc.returncode == 0 and report.is_file(), proc.stderr
    soon = (TODAY + dt.timedelta(days=5)).isoformat()
    text = _waiver() + _waiver(rule="INVENTORY-SYMLINK-*", expires=soon) + _waiver(rule="FORMAT-*", expires=PAST)
    path = _file(tmp_path, text, "all.yaml")
    proc = run_cli("waivers", "check", "--waivers", str(path), "--report", str(report))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["EXPIRED", "EXPIRING", "UNUSED"]
    assert lines[0].startswith(f"EXPIRED  {PAST}  FORMAT-*: ") and lines[0].endswith(f"[{path}#3]")
    assert lines[1].startswith(f"EXPIRING {soon}  INVENTORY-SYMLINK-*") and "UNUSED" in lines[2]
    assert "INVENTORY-SYMLINK-*" in lines[2]
    assert "3 waiver(s): 1 expired, 1 expiring within 30 days, 1 unused" in proc.stderr
    fine = run_cli("waivers", "check", "--waivers", str(_file(tmp_path, _waiver(), "fine.yaml")))
    assert fine.returncode == 0 and fine.stdout == "" and "give --report" in fine.stderr
