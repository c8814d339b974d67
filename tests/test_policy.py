"""Policies: presets, schema errors, overrides and the requirements, on demo and generated repos."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from auditor import rules
from auditor.errors import AuditorError
from auditor.facts import Facts
from auditor.judge import policy
from auditor.model import Claim, ClaimStatus, Finding, Options, Severity
from auditor.pipeline import audit
from auditor.reports import json_report
from auditor.workflows import demo

MISMATCH_RULE = "FORMAT-EXTENSION-MISMATCH"


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("policy-repos")
    built = {"clean": demo.build_clean(root / "clean"), "risky": demo.build_risky(root / "risky")}
    # The clean model plus one medium problem: a "picture" that is really text (extension mismatch).
    mismatch = demo.build_clean(root / "mismatch")
    (mismatch / "preview.png").write_text("a placeholder for the model's preview picture\n")
    built["mismatch"] = mismatch
    return built


_CACHE: dict[tuple[str, str], tuple[int, dict]] = {}


def _scan(target: Path, policy_name: str = "default") -> tuple[int, dict]:
    """Audit in-process (fast) and return (the CLI's exit code, the canonical JSON report)."""
    key = (str(target), policy_name)
    if key not in _CACHE:
        result = audit(str(target), Options(policy=policy_name))
        _CACHE[key] = (1 if result.verdict.decision == "fail" else 0, json_report.to_dict(result))
    return _CACHE[key]


def _error(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_presets_are_valid_and_keep_their_thresholds() -> None:
    assert {"default", "strict", "no-direct-connection"} <= set(policy.presets())
    for name in policy.presets():
        policy.check_schema(rules.load(f"policies/{name}.yaml"), name)       # skipped at run time
    loaded = {name: policy.load(name) for name in policy.presets()}
    assert (loaded["default"].fail_on, loaded["default"].warn_on) == (Severity.HIGH, Severity.MEDIUM)
    assert loaded["strict"].fail_on == Severity.MEDIUM
    ndc = loaded["no-direct-connection"]
    claim_ids = {c["id"] for c in rules.load("claims.yaml")["claims"]}
    assert set(ndc.settings["require_claims"]) <= claim_ids and "CN" in ndc.settings["sensitive_origins"]


def test_same_model_passes_default_and_fails_strict_with_reasons(repos: dict[str, Path]) -> None:
    code, default = _scan(repos["mismatch"])
    assert code == 0 and default["verdict"]["decision"] in ("pass", "warn")
    assert any(f["rule"] == MISMATCH_RULE and f["severity"] == "medium" for f in default["findings"])
    code, strict = _scan(repos["mismatch"], "strict")
    assert code == 1 and strict["verdict"]["decision"] == "fail" and strict["verdict"]["policy"] == "strict"
    assert f"medium: {MISMATCH_RULE} preview.png: File extension does not match its content" \
        in strict["verdict"]["reasons"]


def test_exit_codes_through_the_cli(repos: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "strict.json"
    proc = run_cli("scan", str(repos["mismatch"]), "-q", "-o", str(report), "--policy", "strict")
    assert proc.returncode == 1 and json.loads(report.read_text())["verdict"]["decision"] == "fail", proc.stderr


def test_strict_refuses_pickle_in_any_container(repos: dict[str, Path], tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "torchzip"
    folder.mkdir()
    torch.save({"w": torch.zeros(2, 2)}, folder / "weights.pt")          # a zip with data.pkl inside
    code, report = _scan(folder, "strict")
    denied = [f for f in report["findings"] if f["rule"] == "POLICY-FORMAT-DENIED"]
    assert code == 1 and [f["file"] for f in denied] == ["weights.pt"] and "pickle" in denied[0]["evidence"]
    assert any("POLICY-FORMAT-DENIED weights.pt" in r for r in report["verdict"]["reasons"])
    code, report = _scan(repos["risky"], "strict")            # a raw pickle
    assert code == 1 and any(f["rule"] == "POLICY-FORMAT-DENIED" and f["file"] == "pytorch_model.bin"
                             for f in report["findings"])
    # strict also refuses the license terms the license scanner found in the risky demo's LICENSE.
    terms = {f["title"] for f in report["findings"] if f["rule"] == "POLICY-LICENSE-TERM"}
    assert {"License term registration is refused by the policy",
            "License term remote-restriction is refused by the policy"} <= terms
    _, report = _scan(repos["clean"], "strict")
    assert not [f for f in report["findings"] if f["rule"] == "POLICY-FORMAT-DENIED"]


def test_overrides_change_severity_ignore_and_most_specific_glob_wins(repos: dict[str, Path], tmp_path: Path) -> None:
    ignore = _write(tmp_path / "ignore.yaml", "name: ignore-mismatch\nfail_on: medium\n"
                    f"overrides:\n  {MISMATCH_RULE}: ignore\n")
    _, report = _scan(repos["mismatch"], str(ignore))
    hit = next(f for f in report["findings"] if f["rule"] == MISMATCH_RULE)
    assert hit["waived"] and hit["waiver"] == "ignored by policy ignore-mismatch"
    assert not any(MISMATCH_RULE in r for r in report["verdict"]["reasons"])
    raise_ = _write(tmp_path / "raise.yaml", f"overrides:\n  'FORMAT-*': low\n  {MISMATCH_RULE[:-4]}*: critical\n")
    code, report = _scan(repos["mismatch"], str(raise_))
    hit = next(f for f in report["findings"] if f["rule"] == MISMATCH_RULE)
    assert code == 1 and hit["severity"] == "critical" and report["verdict"]["policy"] == "raise"
    assert report["verdict"]["reasons"][0] == f"critical: {MISMATCH_RULE} preview.png: File extension does not match its content"


@pytest.mark.parametrize("text, expected", [
    ("overrides:\n  PICKLE-NO-SUCH-RULE-XYZ: high\n", "unknown rule id 'PICKLE-NO-SUCH-RULE-XYZ'"),
    ("fail_on: severe\n", "fail_on: 'severe' is not one of info, low, medium, high, critical"),
    ("fail_on: high\nfail_after: 3\n", "unknown key 'fail_after'"),
    ("sensitive_origins: [china]\n", "sensitive_origins.0: 'china' is not an ISO country code"),
    ("licenses:\n  fail_on: [no-pizza]\n", "licenses.fail_on.0: 'no-pizza' is not one of"),
    ("require_claims: [teleportation]\n", "require_claims: unknown claim 'teleportation'"),
    ("fail_on: low\nwarn_on: high\n", "warn_on (high) is above fail_on (low)"),
    ("name: broken\n  fail_on: high\n", "line 2: mapping values are not allowed here"),
    ("- just\n- a list\n", "expected a mapping at the top level"),
])
def test_bad_policy_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(AuditorError) as caught:
        policy.load(str(path))
    message = str(caught.value)
    assert message.startswith(f"policy {path}") and expected in message and "\n" not in message, message


def test_bad_policy_on_the_cli_is_one_line_before_any_work(repos: dict[str, Path], tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", "overrides:\n  PICKLE-NO-SUCH-RULE-XYZ: high\n")
    line = _error(run_cli("scan", str(repos["clean"]), "--policy", str(path)))
    assert line == f"auditor: error: policy {path}: overrides: unknown rule id 'PICKLE-NO-SUCH-RULE-XYZ' " \
                   "(see `auditor rules`)"


def test_unknown_preset_and_missing_file(repos: dict[str, Path], tmp_path: Path) -> None:
    assert "unknown policy 'laxest'" in _error(run_cli("scan", str(repos["clean"]), "--policy", "laxest"))
    assert "policy file not found" in _error(run_cli("scan", str(repos["clean"]), "--policy",
                                                      str(tmp_path / "nope.yaml")))


def test_pinning_and_signature_requirements(repos: dict[str, Path], tmp_path: Path) -> None:
    path = _write(tmp_path / "pinned.yaml", "name: pinned\nrequire_pinning: true\nrequire_signature: true\n")
    code, report = _scan(repos["clean"], str(path))
    rules_hit = {f["rule"]: f for f in report["findings"] if f["rule"].startswith("POLICY-")}
    assert code == 1 and set(rules_hit) == {"POLICY-UNPINNED", "POLICY-UNSIGNED"}
    assert all(f["severity"] == "high" for f in rules_hit.values())
    assert any("POLICY-UNPINNED" in r for r in report["verdict"]["reasons"])


def _policy(tmp_path: Path, text: str) -> policy.Policy:
    return policy.load(str(_write(tmp_path / "p.yaml", text)))


def _clean_result(repos: dict[str, Path]):  # type: ignore[no-untyped-def]
    if "result" not in _CLEAN:
        _CLEAN["result"] = audit(str(repos["clean"]), Options())
    return _CLEAN["result"]


_CLEAN: dict[str, object] = {}


def test_sensitive_origin_needs_every_required_claim(repos: dict[str, Path], tmp_path: Path) -> None:
    result = _clean_result(repos)
    ndc = policy.load("no-direct-connection")
    cn = {"provenance": {"effective_origin": {"org": "x", "entity": "X", "country": "CN"}}}
    unmet = policy.requirements(ndc, snapshot=result.snapshot, files=result.files, facts=Facts.from_dict(cn),
                                claims=result.claims, findings=list(result.findings))
    # A local folder is not pinned and was not fetched: integrity and route cannot be supported.
    by_claim = {f.location: f for f in unmet if f.rule == "POLICY-CLAIM-UNMET"}
    assert {"claim:integrity", "claim:route"} <= set(by_claim)
    assert all(f.severity >= ndc.fail_on for f in by_claim.values())
    assert "origin CN" in by_claim["claim:route"].title
    assert policy.decide(ndc, [*result.findings, *unmet]).decision == "fail"
    us = {"provenance": {"effective_origin": {"country": "US"}}}
    assert policy.requirements(ndc, snapshot=result.snapshot, files=result.files, facts=Facts.from_dict(us),
                               claims=result.claims, findings=[]) == []
    unknown = policy.requirements(ndc, snapshot=result.snapshot, files=result.files, facts=Facts.from_dict({}),
                                  claims=result.claims, findings=[])
    assert [(f.rule, f.severity) for f in unknown] == [("POLICY-ORIGIN-UNKNOWN", Severity.MEDIUM)]
    # Every required claim supported: nothing to report.
    supported = [Claim(cid, cid, ClaimStatus.SUPPORTED, "checked") for cid in ndc.settings["require_claims"]]
    assert policy.requirements(ndc, snapshot=result.snapshot, files=result.files, facts=Facts.from_dict(cn),
                               claims=supported, findings=[]) == []


def test_license_lists_terms_and_jurisdictions(repos: dict[str, Path], tmp_path: Path) -> None:
    result = _clean_result(repos)
    facts = {"license": {"model": {"id": "llama3", "name": "Llama 3 Community License", "spdx": ""},
                         "lineage": [{"repo_id": "base/model", "license_id": "apache-2.0", "name": "Apache"}],
                         "obligations": [{"term": "naming_duty", "summary": "name the model Llama-3-...",
                                          "source": "LICENSE", "from": "the model"}],
                         "governing_law": "China (CN)", "venue": "Hangzhou"}}
    non_commercial = Finding(rule="LICENSE-NON-COMMERCIAL", severity=Severity.LOW, title="non-commercial only",
                             file="LICENSE", evidence="for non-commercial purposes only")

    def unmet(text: str) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in policy.requirements(_policy(tmp_path, text), snapshot=result.snapshot, files=result.files,
                                     facts=Facts.from_dict(facts), claims=result.claims, findings=[non_commercial]):
            out.setdefault(f.rule, []).append(f)
        return out

    denied = unmet("licenses:\n  deny: [llama3]\n")
    assert list(denied) == ["POLICY-LICENSE-DENIED"] and "llama3" in denied["POLICY-LICENSE-DENIED"][0].title
    allowed = unmet("licenses:\n  allow: [apache-2.0, mit]\n")      # the model's own license is not allowed
    assert [f.evidence.split(":")[0] for f in allowed["POLICY-LICENSE-DENIED"]] == ["the model"]
    assert unmet("licenses:\n  allow: [llama3, apache-2.0]\n") == {}
    terms = unmet("licenses:\n  fail_on: [non-commercial, naming-duty, registration]\n")["POLICY-LICENSE-TERM"]
    assert sorted(f.title for f in terms) == ["License term naming-duty is refused by the policy",
                                              "License term non-commercial is refused by the policy"]
    assert "for non-commercial purposes only" in next(f.evidence for f in terms if "non-commercial" in f.title)
    law = unmet("allowed_jurisdictions: [US, EU]\n")["POLICY-JURISDICTION"]
    assert len(law) == 1 and "Hangzhou" in law[0].evidence and law[0].severity == Severity.HIGH
    assert unmet("allowed_jurisdictions: [CN]\n") == {}
    facts["license"]["governing_law"] = "Bavaria (DE-BY)"
    assert unmet("allowed_jurisdictions: [EU]\n") == {}                # EU contains DE
    facts["license"]["governing_law"] = "the laws of Nowhereland"
    (unplaced,) = unmet("allowed_jurisdictions: [EU]\n")["POLICY-JURISDICTION"]
    assert "could not place the governing law: the laws of Nowhereland" in unplaced.evidence
    # A term the license scanner reported and the user waived is not refused again from the facts.
    waived = Finding(rule="LICENSE-NAMING-DUTY", severity=Severity.LOW, title="naming duty", waived=True)
    again = policy.requirements(_policy(tmp_path, "licenses:\n  fail_on: [naming-duty]\n"), snapshot=result.snapshot,
                                files=result.files, facts=Facts.from_dict(facts), claims=result.claims, findings=[waived])
    assert again == []


def test_policy_requirement_findings_fail_even_a_lenient_policy(tmp_path: Path, repos: dict[str, Path]) -> None:
    lenient = _policy(tmp_path, "fail_on: critical\nwarn_on: critical\nrequire_pinning: true\n")
    result = audit(str(repos["clean"]), Options(policy=str(tmp_path / "p.yaml")))
    assert lenient.fail_on == Severity.CRITICAL
    pin = next(f for f in result.findings if f.rule == "POLICY-UNPINNED")
    assert pin.severity == Severity.CRITICAL and result.verdict.decision == "fail"


def test_policy_loader_rejects_non_mapping_data() -> None:
    with pytest.raises(AuditorError, match="expected a mapping"):
        policy._parse(["fail_on", "high"], "inline")
