"""The `auditor` command end to end, in a child process: exit codes, one-line errors, atomic outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.conftest import run_cli


def _one_line_error(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and "auditor, version" in proc.stdout


def test_missing_path_is_one_line_exit_2(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("scan", str(tmp_path / "nope")))
    assert "no such file or folder" in line


def test_unknown_format_and_policy_are_clear_errors(tmp_path: Path) -> None:
    assert "unknown policy" in _one_line_error(run_cli("scan", str(tmp_path), "--policy", "nonesuch"))
    proc = run_cli("scan", str(tmp_path), "--format", "docx")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_output_into_missing_folder_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    target = tmp_path / "missing" / "report.json"
    assert "does not exist" in _one_line_error(run_cli("scan", str(tmp_path / "m"), "-o", str(target)))
    assert not target.parent.exists()


def test_failed_scan_does_not_overwrite_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("previous report")
    _one_line_error(run_cli("scan", str(tmp_path / "nope"), "-o", str(out)))
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_empty_folder_is_a_finding_not_a_pass(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    (tmp_path / "empty").mkdir()
    proc = run_cli("scan", str(tmp_path / "empty"), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [f["rule"] for f in report["findings"]] == ["INVENTORY-EMPTY"]
    assert report["verdict"]["decision"] == "warn"
    assert all(c["status"] != "supported" for c in report["claims"])


def test_odd_file_names_and_zero_byte_file(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    names = ["spa ce.json", "new\nline.txt", "модель.txt", "-dash.json", "quote'\".txt", "tab\tname.md"]
    for name in names:
        (model / name).write_text("{}")
    (model / "zero.bin").write_bytes(b"")
    out = tmp_path / "r.json"
    proc = run_cli("scan", str(model), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert sorted(f["path"] for f in report["files"]) == sorted(names + ["zero.bin"])
    assert any(f["rule"] == "INVENTORY-EMPTY-FILE" and f["file"] == "zero.bin" for f in report["findings"])


def test_single_file_target(tmp_path: Path) -> None:
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "other.json").write_text("{}")
    proc = run_cli("scan", str(tmp_path / "model.safetensors"), "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [f["path"] for f in report["files"]] == ["model.safetensors"]
    assert report["snapshot"]["kind"] == "local-file"


def test_json_report_shape(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    report = json.loads(run_cli("scan", str(tmp_path), "-q").stdout)
    assert report["schema"] == "auditor.report/v1"
    assert {"schema", "tool", "target", "snapshot", "files", "findings", "verdict", "claims",
            "timings"} <= set(report)
    assert report["tool"]["name"] == "auditor"
    assert set(report["files"][0]) >= {"path", "size", "sha256", "format"}
    for claim in report["claims"]:
        assert claim["status"] in ("supported", "refuted", "not assessed")
        assert set(claim) == {"id", "title", "status", "evidence", "reason"}


def test_rules_lists_every_rule() -> None:
    from auditor import rules
    proc = run_cli("rules")
    assert proc.returncode == 0
    for rule_id in rules.catalog():
        assert rule_id in proc.stdout
    listed = json.loads(run_cli("rules", "--format", "json").stdout)
    assert {r["id"] for r in listed} == set(rules.catalog())
    assert all(r["severity"] in ("info", "low", "medium", "high", "critical") for r in listed)


def test_quiet_and_non_tty_print_no_progress(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    proc = run_cli("scan", str(tmp_path), "-q", "-o", str(tmp_path / "r.json"))
    assert proc.stderr == ""
    proc = run_cli("scan", str(tmp_path), "-o", str(tmp_path / "r.json"))
    assert "hashing" not in proc.stderr and "PASS" in proc.stderr


def test_output_to_a_fifo_writes_through_and_keeps_the_node(tmp_path: Path) -> None:
    import os
    import stat
    import threading

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = run_cli("scan", str(tmp_path / "m"), "-q", "-o", str(fifo))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(received[0])["schema"] == "auditor.report/v1"


def test_no_modelscan_runs_only_our_engine(tmp_path: Path) -> None:
    import pickle
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    both = json.loads(run_cli("scan", str(tmp_path / "m"), "-q").stdout)
    ours = json.loads(run_cli("scan", str(tmp_path / "m"), "-q", "--no-modelscan").stdout)
    assert "modelscan" in both["facts"] and "modelscan" not in ours["facts"]


def test_a_missing_relative_path_that_looks_like_a_repo_id_says_both(tmp_path: Path) -> None:
    import os
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "AUDITOR_HUB_TIMEOUT": "5"}
    line = _one_line_error(run_cli("scan", "models/missing", cwd=tmp_path, env=env))
    assert "no local file or folder is named models/missing" in line
