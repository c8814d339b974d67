"""Lock files and drift: `auditor lock`, `auditor fetch`, `auditor verify` against a real Hub mirror (olah)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hubfixtures import HubWorld

from auditor.cli import main

pytest_plugins = ["hub_plugin"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture()
def deployed(hub_world: HubWorld, hub_cache: Path, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, str]:
    """A lock of acme/tiny-chat at its head commit, and a folder fetched from the mirror at that commit."""
    commit = hub_world.repos["acme/tiny-chat"].head
    lock = tmp_path / "auditor.lock"
    report = tmp_path / "audit.json"
    code, _out, err = run_cli(["lock", f"hf://acme/tiny-chat@{commit}", "-o", str(lock), "--report", str(report),
                               "--endpoint", hub_world.url, "-q"], capsys)
    assert code == 0, err
    dest = tmp_path / "deploy" / "model"
    code, _out, err = run_cli(["fetch", f"hf://acme/tiny-chat@{commit}", "--to", str(dest),
                               "--endpoint", hub_world.url, "-q"], capsys)
    assert code in (0, 1), err
    return lock, dest, commit


def verify(dest: Path, lock: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code, out, _err = run_cli(["verify", str(dest), "--lock", str(lock), "--format", "json"], capsys)
    return code, json.loads(out)


def test_lock_records_commit_files_and_audit_digest(deployed: tuple[Path, Path, str], hub_world: HubWorld) -> None:
    lock_path, _dest, commit = deployed
    lock = json.loads(lock_path.read_text())
    assert lock["lockfile"] == "auditor-lock" and lock["version"] == 1
    assert lock["repo_id"] == "acme/tiny-chat" and lock["commit"] == commit and lock["endpoint"] == hub_world.url
    files = {f["path"]: f for f in lock["files"]}
    data = hub_world.repos["acme/tiny-chat"].lfs["model.safetensors"]
    assert files["model.safetensors"] == {"path": "model.safetensors", "size": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()}
    assert set(files) == {".gitattributes", "README.md", "config.json", "generation_config.json", "model.safetensors"}
    report = (lock_path.parent / "audit.json").read_bytes()
    assert lock["audit"]["digest"] == "sha256:" + hashlib.sha256(report).hexdigest()
    assert lock["audit"]["verdict"] == json.loads(report)["verdict"]["decision"]


def test_untouched_deployment_verifies(deployed: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    lock, dest, _commit = deployed
    code, result = verify(dest, lock, capsys)
    assert code == 0 and result["drift"] is False and result["findings"] == []
    assert result["files_checked"] == 5
    code, out, _err = run_cli(["verify", str(dest), "--lock", str(lock)], capsys)
    assert code == 0 and out.startswith("OK: 5 file(s) match")


def test_every_kind_of_drift(deployed: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    lock, dest, _commit = deployed
    (dest / "config.json").write_text('{"architectures": ["Changed"]}')
    (dest / "README.md").unlink()
    (dest / "notes.txt").write_text("added after the audit\n")
    (dest / "modeling_backdoor.py").write_text("import os\n")
    code, result = verify(dest, lock, capsys)
    assert code == 1 and result["drift"] is True
    found = {(f["rule"], f["file"], f["severity"]) for f in result["findings"]}
    assert found == {
        ("LOCK-CHANGED", "config.json", "critical"),
        ("LOCK-MISSING", "README.md", "high"),
        ("LOCK-EXTRA", "notes.txt", "medium"),
        ("LOCK-EXTRA-CODE", "modeling_backdoor.py", "critical"),
    }
    code, out, _err = run_cli(["verify", str(dest), "--lock", str(lock)], capsys)
    assert code == 1 and "DRIFT: 4 difference(s)" in out


def test_same_size_change_is_caught(deployed: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    lock, dest, _commit = deployed
    weights = dest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    code, result = verify(dest, lock, capsys)
    assert code == 1 and [f["rule"] for f in result["findings"]] == ["LOCK-CHANGED"]


def test_lock_inside_the_folder_is_not_extra(deployed: tuple[Path, Path, str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    lock, dest, _commit = deployed
    inside = dest / "auditor.lock"
    inside.write_bytes(lock.read_bytes())
    code, result = verify(dest, inside, capsys)
    assert code == 0 and result["findings"] == []


def test_verify_a_hub_target_against_the_lock(deployed: tuple[Path, Path, str], hub_world: HubWorld,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    lock, _dest, _commit = deployed
    code, out, err = run_cli(["verify", "hf://acme/tiny-chat", "--lock", str(lock)], capsys)
    assert code == 0, out + err


@pytest.mark.parametrize("content", ["not json", '{"lockfile": "other"}', '{"lockfile": "auditor-lock", "version": 1}'])
def test_bad_lock_file_is_a_one_line_error(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.lock"
    bad.write_text(content)
    (tmp_path / "m").mkdir()
    code, _out, err = run_cli(["verify", str(tmp_path / "m"), "--lock", str(bad)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "lock" in err


def test_scan_with_a_lock_file_reports_drift_and_refutes_integrity(deployed: tuple[Path, Path, str]) -> None:
    from auditor.model import Options
    from auditor.pipeline import audit
    lock, dest, _commit = deployed
    clean = audit(str(dest), Options(lock_file=str(lock)))
    assert not [f for f in clean.findings if f.rule.startswith("LOCK-")]
    (dest / "extra_module.py").write_text("print('hi')\n")
    drifted = audit(str(dest), Options(lock_file=str(lock)))
    assert [(f.rule, f.file) for f in drifted.findings if f.rule.startswith("LOCK-")] == [
        ("LOCK-EXTRA-CODE", "extra_module.py")]
    assert {c.id: c.status.value for c in drifted.claims}["integrity"] == "refuted"
    broken = audit(str(dest), Options(lock_file=str(dest / "no-such.lock")))
    assert [f.rule for f in broken.findings if f.rule.startswith("LOCK-")] == ["LOCK-INVALID"]
