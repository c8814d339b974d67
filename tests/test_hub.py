"""Fetching from a real Hub mirror (olah 0.5.4, offline mode, serving git repos built by the fixtures).

HTTP 500 and a slow server are cases olah cannot produce: each uses the small stdlib CaseServer from
hubfixtures, for that case alone. "Server down" is a port nobody listens on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hubfixtures import CaseServer, HubWorld, free_port

from auditor.cli import main
from auditor.model import Options, Severity
from auditor.pipeline import audit

pytest_plugins = ["hub_plugin"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def rules_of(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule for f in result.findings}


def test_branch_is_resolved_to_one_commit_and_flagged_unpinned(hub_world: HubWorld, hub_cache: Path) -> None:
    repo = hub_world.repos["Qwen/tiny-base"]
    result = audit("hf://Qwen/tiny-base", Options(endpoint=hub_world.url, token=False))
    snap = result.snapshot
    assert snap.resolved_revision == repo.head
    assert snap.requested_revision == ""
    assert snap.facts["revision_kind"] == "branch"
    assert snap.endpoint == hub_world.url
    assert snap.hosts_contacted == (hub_world.url,)          # nothing else, not even huggingface.co
    assert "PROVENANCE-UNPINNED" in rules_of(result)
    assert str(hub_cache) in snap.root                        # the per-endpoint cache, never the default one
    # every file verified against the publisher's listing: LFS sha256 and git blob sha1
    verification = result.facts["integrity"]["verification"]
    assert verification["mismatched"] == 0
    assert verification["verified"] == len(result.files) > 0
    weights = next(f for f in result.files if f.path == "model.safetensors")
    assert weights.publisher_sha256 == hashlib.sha256(repo.lfs["model.safetensors"]).hexdigest() == weights.sha256
    assert next(f for f in result.files if f.path == "config.json").publisher_git_sha1
    claims = {c.id: c.status.value for c in result.claims}
    assert claims["integrity"] == "supported"


def test_tag_resolves_to_the_tagged_commit(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://Qwen/tiny-base@v1.0", Options(endpoint=hub_world.url, token=False))
    assert result.snapshot.resolved_revision == hub_world.tags["Qwen/tiny-base@v1.0"]
    assert result.snapshot.facts["revision_kind"] == "tag"
    assert "PROVENANCE-UNPINNED-TAG" in rules_of(result)
    assert "PROVENANCE-UNPINNED" not in rules_of(result)
    # the tag is before the third commit: its files only
    assert "notes/changes.txt" not in {f.path for f in result.files}
    assert "LICENSE" in {f.path for f in result.files}


def test_pinned_commit_is_not_flagged(hub_world: HubWorld, hub_cache: Path) -> None:
    first = hub_world.repos["Qwen/tiny-base"].commits[0]
    result = audit(f"Qwen/tiny-base@{first}", Options(endpoint=hub_world.url, token=False))
    assert result.snapshot.resolved_revision == first
    assert result.snapshot.facts["revision_kind"] == "commit"
    assert not {"PROVENANCE-UNPINNED", "PROVENANCE-UNPINNED-TAG"} & rules_of(result)
    assert {f.path for f in result.files} == {"README.md", "config.json", "model.safetensors", ".gitattributes"}


def test_tampered_blob_is_a_critical_hash_mismatch(hub_world: HubWorld, hub_cache: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run_cli(["scan", "hf://acme/tampered", "--endpoint", hub_world.url, "-q"], capsys)
    report = json.loads(out)
    mismatches = [f for f in report["findings"] if f["rule"] == "HUB-HASH-MISMATCH"]
    assert [f["file"] for f in mismatches] == ["model.safetensors"]
    assert mismatches[0]["severity"] == "critical"
    assert code == 1
    claims = {c["id"]: c for c in report["claims"]}
    assert claims["integrity"]["status"] == "refuted"


def test_metadata_only_lists_weights_without_downloading_them(hub_world: HubWorld, hub_cache: Path) -> None:
    before = len(hub_world.olah.requests())
    result = audit("hf://acme/sharded", Options(endpoint=hub_world.url, token=False, metadata_only=True))
    requests = hub_world.olah.requests()[before:]
    assert requests, "olah's access log should show the metadata requests"
    assert not [line for line in requests if ".safetensors " in line and "/resolve/" in line]
    assert not [f for f in result.files if f.path.endswith(".safetensors")]
    assert not list(Path(hub_cache).rglob("*.safetensors"))
    remote = result.facts["provenance"]["remote_files"]
    assert len(remote) == 50 and all(len(r["sha256"]) == 64 and r["downloaded"] is False for r in remote)
    assert {f.path for f in result.files} >= {"config.json", "model.safetensors.index.json", "tokenizer_config.json"}
    assert "HUB-METADATA-ONLY" in rules_of(result)
    claims = {c.id: c.status.value for c in result.claims}
    assert claims["integrity"] == "not assessed"


def test_fetch_places_verified_files_and_report(hub_world: HubWorld, hub_cache: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "deploy" / "tiny-chat"
    code, _out, err = run_cli(["fetch", "hf://acme/tiny-chat", "--to", str(dest), "--endpoint", hub_world.url], capsys)
    assert code in (0, 1), err
    repo = hub_world.repos["acme/tiny-chat"]
    placed = dest / "model.safetensors"
    assert not placed.is_symlink()
    assert hashlib.sha256(placed.read_bytes()).hexdigest() == hashlib.sha256(repo.lfs["model.safetensors"]).hexdigest()
    report = json.loads((dest.parent / "tiny-chat.audit.json").read_text())
    assert report["snapshot"]["resolved_revision"] == repo.head
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny-chat", "tiny-chat.audit.json"]


def test_fetch_refuses_to_place_tampered_files(hub_world: HubWorld, hub_cache: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "t"
    code, _out, err = run_cli(["fetch", "hf://acme/tampered", "--to", str(dest), "--endpoint", hub_world.url, "-q"],
                              capsys)
    assert code == 2
    assert "HUB-HASH-MISMATCH" in err and len(err.strip().splitlines()) == 1
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["t.audit.json"]


def _error_case(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    dest = tmp_path / "out"
    code, out, err = run_cli(["fetch", *args, "--to", str(dest), "-q"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error:"), err
    assert not dest.exists()
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".json")
                 and "blobs" in p.parts and p.name.endswith(".incomplete")]
    assert leftovers == []
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []
    return lines[0]


def test_missing_repo(hub_world: HubWorld, hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error_case(["hf://acme/no-such-model", "--endpoint", hub_world.url], tmp_path, capsys)
    assert "repository not found" in line


def test_missing_revision(hub_world: HubWorld, hub_cache: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    line = _error_case(["hf://Qwen/tiny-base@no-such-branch", "--endpoint", hub_world.url], tmp_path, capsys)
    assert "revision 'no-such-branch' not found" in line


def test_server_down(hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error_case(["hf://acme/x", "--endpoint", f"http://127.0.0.1:{free_port()}"], tmp_path, capsys)
    assert "cannot connect" in line


def test_http_500(hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with CaseServer("500") as server:
        line = _error_case(["hf://acme/x", "--endpoint", server.url], tmp_path, capsys)
    assert "HTTP 500" in line and "3 attempt(s)" in line
    assert len(server.seen) == 3


def test_slow_server_times_out(hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HUB_TIMEOUT", "0.5")
    with CaseServer("slow", delay=3) as server:
        line = _error_case(["hf://acme/x", "--endpoint", server.url], tmp_path, capsys)
    # the message gives the real figures: the timeout per try, and how many tries for how long in all
    assert "sent nothing for 0.5 s" in line and "3 attempt(s) in" in line
    assert len(server.seen) == 3                      # rules/hub.yaml retry.attempts, then it stops


def test_saved_token_is_not_sent_to_a_mirror(hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_" + "s3cr3t" * 6
    monkeypatch.setenv("HF_TOKEN", secret)
    with CaseServer("500") as server:
        line = _error_case(["hf://acme/x", "--endpoint", server.url], tmp_path, capsys)
    assert server.seen and all(auth == "" for _m, _p, auth in server.seen)
    assert secret not in line


def test_unsupported_hub_is_refused(hub_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(["scan", "hf://qwen/x", "--endpoint", "https://www.modelscope.cn", "-q"], capsys)
    assert code == 2 and "ModelScope" in err


def test_cache_is_separate_per_endpoint(hub_world: HubWorld, hub_cache: Path) -> None:
    from auditor.sources import hub
    a = hub.cache_root(Options(), "http://127.0.0.1:1")
    b = hub.cache_root(Options(), "http://127.0.0.1:2")
    c = hub.cache_root(Options(), "https://mirror.example/hf")
    assert len({a, b, c}) == 3 and all(p.parent == hub_cache for p in (a, b, c))


def test_finding_severities_are_catalogued() -> None:
    from auditor import rules
    catalog = rules.catalog()
    assert catalog["HUB-HASH-MISMATCH"].severity == Severity.CRITICAL
    assert catalog["LOCK-EXTRA-CODE"].severity == Severity.CRITICAL


def test_redirect_to_another_host_is_recorded(hub_world: HubWorld, hub_cache: Path) -> None:
    """A front server that answers files itself but redirects API calls to olah (olah never redirects
    off-host, so this case needs the small CaseServer): both hosts are recorded and flagged."""
    with CaseServer(f"split:{hub_world.url}") as front:
        result = audit("hf://acme/tiny-chat", Options(endpoint=front.url, token=False))
    assert result.snapshot.endpoint == front.url
    assert result.snapshot.hosts_contacted == (front.url, hub_world.url)
    off = [f for f in result.findings if f.rule == "PROVENANCE-OFF-ENDPOINT-HOST"]
    assert [f.evidence.split()[0] for f in off] == [hub_world.url]
    assert result.facts["integrity"]["verification"]["mismatched"] == 0


@pytest.mark.parametrize(("path", "unsafe"), [
    ("model.safetensors", False), ("sub/dir/notes.txt", False), ("../escape", True), ("a/../../b", True),
    ("/etc/passwd", True), ("C:/x", True), ("a\\b", True), ("a//b", True), ("./a", True), ("", True),
])
def test_listing_paths_that_could_escape_are_refused(path: str, unsafe: bool) -> None:
    from auditor.sources import hub
    assert hub._unsafe_path(path) is unsafe


def test_unsafe_listing_entry_is_a_finding(tmp_path: Path) -> None:
    from auditor import inventory, scanners
    from auditor.model import Snapshot
    from auditor.scanners import provenance
    (tmp_path / "config.json").write_text("{}")
    snapshot = Snapshot(root=str(tmp_path), kind="hub", target="hf://x/y", repo_id="x/y", resolved_revision="c" * 40,
                        endpoint="http://127.0.0.1:1", facts={"revision_kind": "commit", "unsafe_paths": ["../x"]})
    inv = inventory.build(snapshot, Options())
    ctx = scanners.ScanContext(snapshot=snapshot, files=tuple(inv.files), options=Options())
    [unsafe] = [f for f in provenance.scan(ctx) if f.rule == "HUB-UNSAFE-PATH"]
    assert unsafe.severity == Severity.HIGH and "../x" in unsafe.evidence
