"""`auditor ci` in a real two-commit git repository; the GitHub Action and the pre-commit hook files."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from conftest import run_cli
from git_support import SARIF_SCHEMA, ci_env, git
from markdown_it import MarkdownIt

from auditor import rules
from auditor.errors import AuditorError
from auditor.workflows import ci, demo

REPO_ROOT = Path(__file__).resolve().parent.parent




@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commit 1: models a, b, d in models.yaml. Commit 2: b's policy changes, c is added, a gets a new
    weight file, a loose safetensors file and a README change arrive; d is untouched."""
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("ci") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name in ("a", "b", "d"):
        demo.build_clean(root / "models" / name)
    (root / "README.md").write_text("# our models\n")
    (root / "models.yaml").write_text("models:\n  - target: models/a\n  - target: models/b\n"
                                      "  - target: models/d\n    name: model-d\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    demo.build_clean(root / "models" / "c")
    (root / "models" / "c" / "preview.png").write_text("text, not a picture\n")   # medium: fails strict
    save_file({"bias": np.zeros(4, dtype=np.float32)}, str(root / "models" / "a" / "adapter.safetensors"))
    (root / "extra").mkdir()
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(root / "extra" / "head.safetensors"))
    (root / "README.md").write_text("# our models\n\nnow with c\n")
    (root / "models.yaml").write_text("models:\n  - target: models/a\n  - target: models/b\n    policy: strict\n"
                                      "  - target: models/d\n    name: model-d\n"
                                      "  - target: models/c\n    policy: strict\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "second")
    return root


def _markdown_tokens(text: str) -> list:  # type: ignore[type-arg]
    return MarkdownIt("commonmark").enable("table").parse(text)


def test_ci_audits_exactly_what_changed_and_writes_valid_reports(repo: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    out = tmp_path / "out"
    proc = run_cli("ci", "--sarif", str(out / "a.sarif"), "--markdown", str(out / "s.md"),
                   "--comment", str(out / "c.md"), cwd=repo, env=ci_env(GITHUB_STEP_SUMMARY=str(summary)))
    assert proc.returncode == 1, proc.stderr           # c fails under strict
    assert "Traceback" not in proc.stderr
    audited = re.findall(r"^(PASS|WARN|FAIL|ERROR) +(\S+) \(([^)]*)\)", proc.stderr, re.M)
    assert sorted((target, why) for _, target, why in audited) == [
        ("extra", "files changed: extra/head.safetensors"),
        ("models/a", "files changed: models/a/adapter.safetensors"),
        ("models/b", "changed"),
        ("models/c", "added"),
    ]
    assert ("FAIL", "models/c", "added") in audited

    sarif = json.loads((out / "a.sarif").read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(sarif))
    assert errors == [], errors[:3]
    (run,) = sarif["runs"]
    assert sorted(m["target"] for m in run["properties"]["models"]) == [
        "extra", "models/a", "models/b", "models/c"]
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"] for loc in r["locations"]}
    assert "models/c/preview.png" in uris
    assert all((repo / uri).is_file() for uri in uris), uris        # every location is a file of the repo
    assert all(r["ruleIndex"] == [x["id"] for x in run["tool"]["driver"]["rules"]].index(r["ruleId"])
               for r in run["results"])

    markdown = (out / "s.md").read_text()
    tokens = _markdown_tokens(markdown)
    inline = [c for t in tokens for c in (t.children or [])]
    html = {t.content.strip() for t in [*tokens, *inline] if t.type in ("html_block", "html_inline")}
    ours = re.compile(r"^(</?sub>|</?details>|<summary>[^<>]*</summary>|<details>\s*<summary>[^<>]*</summary>)$")
    assert all(ours.match(h) for h in html), html           # the renderer's own tags, nothing from a model
    assert tokens[0].type == "heading_open" and tokens[1].content == "auditor ci: ❌ FAIL"
    first_table = markdown.split("\n\n")[2].splitlines()  # the overview table
    assert len(first_table) == 2 + 4 and "models/d" not in markdown and "model-d" not in markdown
    assert sum(t.type == "table_open" for t in tokens) >= 5      # the overview plus each model's findings
    comment = (out / "c.md").read_text()
    assert comment.startswith(ci.COMMENT_MARKER + "\n") and comment.split("\n", 1)[1] == markdown
    assert summary.read_text() == "earlier step\n" + markdown


def test_ci_defaults_nothing_changed_and_all(repo: Path) -> None:
    proc = run_cli("ci", "--base", "HEAD", cwd=repo, env=ci_env())
    assert proc.returncode == 0, proc.stderr
    assert "nothing to audit" in proc.stderr
    written = {p: repo / p for p in ("auditor.sarif", "auditor-summary.md", "auditor-comment.md")}
    assert all(p.is_file() for p in written.values())
    sarif = json.loads(written["auditor.sarif"].read_text())
    assert list(jsonschema.Draft202012Validator(json.loads(SARIF_SCHEMA.read_text())).iter_errors(sarif)) == []
    assert sarif["runs"][0]["results"] == []
    assert "No model entry or model file was added or changed." in written["auditor-summary.md"].read_text()
    for p in written.values():
        p.unlink()
    everything = ci.plan(repo, repo / "models.yaml", ci.EMPTY_TREE, audit_all=True)
    assert [(i.entry.label, i.why) for i in everything.items] == [
        ("models/a", "--all"), ("models/b", "--all"), ("model-d", "--all"), ("models/c", "--all")]
    first = ci.plan(repo, repo / "models.yaml", git(repo, "rev-parse", "HEAD~1"), audit_all=False)
    assert [i.entry.target for i in first.items] == ["models/a", "models/b", "models/c", "extra"]
    assert [i.entry.line for i in first.items[:3]] == [2, 3, 7]


def test_precommit_mode_audits_the_model_folders_of_the_given_files(repo: Path, tmp_path: Path) -> None:
    proc = run_cli("ci", "--warn-exit-code", "0", "extra/head.safetensors", "models/d/model.safetensors",
                   "models/d/config.json", "README.md", cwd=repo, env=ci_env())
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^\w+ +(\S+) \(given: ([^)]*)\)", proc.stderr, re.M) == [
        ("extra", "extra/head.safetensors"), ("models/d", "models/d/model.safetensors, models/d/config.json")]
    assert "wrote" not in proc.stderr and not (repo / "auditor.sarif").exists()


def test_ci_usage_errors_are_one_line(repo: Path, tmp_path: Path) -> None:
    proc = run_cli("ci", "--base", "no-such-branch", cwd=repo, env=ci_env())
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "auditor: error: base ref 'no-such-branch' not found (in GitHub Actions, check out with fetch-depth: 0)")
    outside = run_cli("ci", cwd=tmp_path, env=ci_env())
    assert outside.returncode == 2 and "is not inside a git repository" in outside.stderr
    assert len(outside.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("text, expected", [
    ("models:\n  - revision: abc\n", "entry 1: needs a `target`"),
    ("models:\n  - target: x\n    revison: abc\n", "entry 1: unknown key revison"),
    ("models:\n  - target: x\n  - target: x\n", "entry 2: target 'x' is listed twice"),
    ("models: [\n", "line 2"),
    ("name: nope\n", "expected a `models:` list"),
])
def test_bad_manifest_is_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(AuditorError, match=re.escape(expected)):
        ci.parse_manifest(text, "models.yaml")


def test_manifest_forms_and_what_counts_as_changed() -> None:
    old = ci.parse_manifest("- org/a\n- target: hf://org/b\n  revision: 1111\n", "m")
    new = ci.parse_manifest("models:\n  - org/a\n  - target: hf://org/b\n    revision: 2222\n", "m")
    assert list(old) == list(new) == ["org/a", "hf://org/b"]
    assert old["org/a"].comparable() == new["org/a"].comparable()
    assert old["hf://org/b"].comparable() != new["hf://org/b"].comparable()
    assert new["hf://org/b"].label == "hf://org/b@2222" and new["hf://org/b"].line == 3


def test_action_and_precommit_hook_files() -> None:
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"policy", "manifest", "base-ref", "endpoint", "upload-sarif"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    assert all("shell" in s for s in steps if "run" in s)
    run_text = "\n".join(s.get("run", "") for s in steps)
    assert "args=(ci " in run_text and 'auditor "${args[@]}"' in run_text and "inputs." not in run_text   # inputs reach scripts through env only
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif@") for s in steps)
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["entry"].split()[:2] == ["auditor", "ci"] and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    for suffix in rules.load("ci.yaml")["model_extensions"]:
        assert pattern.search(f"models/x/weights{suffix}"), suffix
    assert not pattern.search("src/main.go")


def test_an_entry_that_cannot_be_audited_fails_and_is_reported(repo: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "models.yaml"          # outside the repo: refused; inside: a missing folder
    manifest.write_text("models:\n  - target: ./models/none\n")
    with pytest.raises(AuditorError, match="outside the git repository"):
        ci.plan(repo, manifest, ci.EMPTY_TREE, audit_all=True)
    run = ci.Run(repo_root=repo, manifest="models.yaml", base=ci.EMPTY_TREE,
                 items=[ci.Item(ci.parse_manifest("models:\n  - target: ./models/none\n", "m")["./models/none"],
                                "added")])
    ci.execute(run, policy="default", waivers="", endpoint="", manifest_dir=repo)
    (item,) = run.items
    assert item.decision == "error" and "models/none" in item.error and run.failed
    sarif = ci.sarif(run)
    assert list(jsonschema.Draft202012Validator(json.loads(SARIF_SCHEMA.read_text())).iter_errors(sarif)) == []
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "POLICY-NOT-AUDITED" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "models.yaml", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 2}}
    assert "❌ error" in ci.markdown(run)
    # Text from a manifest or an error message never becomes Markdown structure or HTML.
    item.error = "<img src=x onerror=alert(1)> | @admins #12 [x](https://evil.example)"
    run.items.append(ci.Item(ci.Entry(target="x", name="<script>alert(1)</script>|`"), "added", error="boom"))
    tokens = _markdown_tokens(ci.markdown(run))
    inline = [c for t in tokens for c in (t.children or [])]
    assert not [t for t in [*tokens, *inline] if t.type in ("html_block", "html_inline", "link_open")]
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 1 + 2                                   # header + two entries: no injected columns/rows



def _action_step(name: str) -> dict:  # type: ignore[type-arg]
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    return next(s for s in action["runs"]["steps"] if s.get("name") == name)


def test_action_scripts_run_the_check_and_carry_its_exit_code(repo: Path, tmp_path: Path) -> None:
    """The composite action's own bash, run as GitHub would: inputs in env, outputs in $GITHUB_OUTPUT."""
    check = _action_step("Audit changed models")
    outputs = tmp_path / "github-output"
    env = ci_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", GITHUB_OUTPUT=str(outputs),
               AUDITOR_POLICY="default", AUDITOR_MANIFEST="models.yaml", AUDITOR_BASE="HEAD~1", AUDITOR_ALL="false",
               AUDITOR_FAIL_ON="fail",
               AUDITOR_ENDPOINT="", AUDITOR_WAIVERS="")
    proc = subprocess.run(["bash", "-c", check["run"]], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr            # the step never fails: the verdict step does
    assert outputs.read_text() == "exit-code=1\n" and "FAIL  models/c (added)" in proc.stderr
    assert json.loads((repo / "auditor.sarif").read_text())["runs"][0]["results"]
    for name in ("auditor.sarif", "auditor-summary.md", "auditor-comment.md"):
        (repo / name).unlink()
    verdict = _action_step("Verdict")["run"]
    codes = {code: subprocess.run(["bash", "-c", verdict], env={**os.environ, "CODE": code}, capture_output=True,
                                  text=True).returncode for code in ("0", "1", "2", "3")}
    assert codes == {"0": 0, "1": 1, "2": 2, "3": 0}


def test_comment_and_summary_fit_githubs_limits(repo: Path) -> None:
    items = [ci.Item(ci.Entry(target=f"models/m{i}"), "added", error="x" * 150) for i in range(600)]
    run = ci.Run(repo_root=repo, manifest="models.yaml", base=ci.EMPTY_TREE, items=items)
    full = ci.markdown(run)
    comment = ci.comment(run)
    assert len(full) > 65_536 and len(comment) <= 65_536 and comment.startswith(ci.COMMENT_MARKER)
    assert comment.rstrip().endswith("the job summary and the SARIF have more._")
    assert ci.step_summary(run) == full                         # far below the 1 MiB summary limit
