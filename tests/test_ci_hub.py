"""Hub entries: `no-direct-connection` on a CN-origin model served by a real mirror (olah), and an
`auditor ci` manifest entry for it whose SARIF points at the manifest line."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hubfixtures import HubWorld

from auditor.judge import policy
from auditor.model import ClaimStatus, Options
from auditor.pipeline import audit
from auditor.workflows import ci

pytest_plugins = ["hub_plugin"]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def test_no_direct_connection_requires_every_claim_for_a_cn_origin(hub_world: HubWorld, hub_cache: Path) -> None:
    commit = hub_world.tags["Qwen/tiny-base@v1.0"]
    options = Options(policy="no-direct-connection", endpoint=hub_world.url, token=False, revision=commit)
    result = audit("hf://Qwen/tiny-base", options)
    assert result.facts["provenance"]["effective_origin"]["country"] == "CN"
    required = policy.load("no-direct-connection").settings["require_claims"]
    unmet = {f.location.removeprefix("claim:"): f for f in result.findings if f.rule == "POLICY-CLAIM-UNMET"}
    claims = {c.id: c for c in result.claims}
    for cid in required:                  # exactly the required claims that are not supported are reported
        assert (cid in unmet) == (claims[cid].status != ClaimStatus.SUPPORTED), (cid, claims[cid])
        if cid in unmet:
            assert claims[cid].reason in unmet[cid].evidence and "origin CN" in unmet[cid].title
    assert not [f for f in result.findings if f.rule == "POLICY-ORIGIN-UNKNOWN"]
    if unmet:
        assert result.verdict.decision == "fail"
        assert any(r.startswith("high: POLICY-CLAIM-UNMET: Claim ") for r in result.verdict.reasons)
    default = audit("hf://Qwen/tiny-base", Options(endpoint=hub_world.url, token=False, revision=commit))
    assert not [f for f in default.findings if f.rule.startswith("POLICY-")]


def test_ci_hub_entry_is_audited_through_the_endpoint_and_located_in_the_manifest(
        hub_world: HubWorld, hub_cache: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=GIT_ENV)

    git("init", "-q", "-b", "main")
    (repo / "models.yaml").write_text("models: []\n")
    git("add", "-A")
    git("commit", "-q", "-m", "empty")
    commit = hub_world.tags["Qwen/tiny-base@v1.0"]
    (repo / "models.yaml").write_text(f"# approved models\nmodels:\n  - target: hf://Qwen/tiny-base\n"
                                      f"    revision: {commit}\n")
    git("commit", "-q", "-am", "add qwen")
    run = ci.plan(repo, repo / "models.yaml", ci.resolve_base(repo, ""), audit_all=False)
    assert [(i.entry.target, i.why, i.local_prefix) for i in run.items] == [("hf://Qwen/tiny-base", "added", "")]
    ci.execute(run, policy="default", waivers="", endpoint=hub_world.url, manifest_dir=repo)
    (item,) = run.items
    assert item.result is not None and item.result.snapshot.resolved_revision == commit
    assert item.result.snapshot.endpoint == hub_world.url
    sarif = ci.sarif(run)
    locations = [loc["physicalLocation"] for r in sarif["runs"][0]["results"] for loc in r["locations"]]
    assert locations and all(loc["artifactLocation"]["uri"] == "models.yaml" and loc["region"] == {"startLine": 3}
                             for loc in locations)
