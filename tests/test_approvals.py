"""Approvals: approve, check, override, expiry, revoke, drift, concurrency, tamper detection, reaudit.

Every test runs on SQLite and on a real PostgreSQL server started by the tests (pg_support).
"""
from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from approvals_support import clean_model, hf_cache_snapshot, pickle_model

from auditor.cli import main

pytest_plugins = ["pg_support"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def scan(target: Path | str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    code, _o, err = run(["scan", str(target), "-o", str(out), "-q", "--no-modelscan", *extra], capsys)
    assert code in (0, 1), err
    return out


def approve(result: Path, db: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(["approve", str(result), "--by", "alice", "--reason", "reviewed", "--db", db, *extra], capsys)


def check(target: Path | str, db: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code, out, err = run(["check", str(target), "--db", db, "--format", "json", *extra], capsys)
    assert code in (0, 1), err
    return code, json.loads(out)


def listed(db: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    code, out, err = run(["approvals", "list", "--all", "--db", db, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_approve_then_check_matches(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = clean_model(tmp_path / "model")
    code, outcome = check(model, db_url, capsys)
    assert code == 1 and not outcome["approved"]
    result = scan(model, tmp_path / "r.json", capsys)
    code, out, err = approve(result, db_url, capsys, "--ticket", "SEC-12")
    assert code == 0, err
    code, outcome = check(model, db_url, capsys)
    assert code == 0 and outcome["approved"], outcome
    report = json.loads(result.read_text())
    assert outcome["approval"]["audit"]["result_digest"] == report["digest"]
    assert outcome["approval"]["audit"]["rules_digest"] == report["tool"]["rules"]
    assert outcome["approval"]["approval"]["ticket"] == "SEC-12"
    assert outcome["approval"]["id"] == int(out.strip())
    assert outcome["approval"]["evidence"][0]["path"] == str(result.resolve())


def test_unapproved_model_is_reported(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    approve(scan(clean_model(tmp_path / "a", seed=1), tmp_path / "a.json", capsys), db_url, capsys)
    code, outcome = check(clean_model(tmp_path / "b", seed=2), db_url, capsys)
    assert code == 1 and outcome["reason"].startswith("no approval")


def test_failing_result_is_refused_unless_overridden(db_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = pickle_model(tmp_path / "evil")
    result = scan(model, tmp_path / "evil.json", capsys)
    assert json.loads(result.read_text())["verdict"]["decision"] == "fail"
    code, _o, err = approve(result, db_url, capsys)
    assert code == 1 and "refused" in err and "--override" in err
    assert listed(db_url, capsys) == []
    code, _o, err = approve(result, db_url, capsys, "--override", "sandboxed research use only")
    assert code == 0, err
    [entry] = listed(db_url, capsys)
    assert entry["approval"]["override"] == "sandboxed research use only" and entry["audit"]["verdict"] == "fail"
    code, outcome = check(model, db_url, capsys)
    assert code == 0 and outcome["approval"]["approval"]["override"]


def test_expired_approval(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = clean_model(tmp_path / "model")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    code, _o, err = approve(scan(model, tmp_path / "r.json", capsys), db_url, capsys, "--expires", tomorrow)
    assert code == 0, err
    assert check(model, db_url, capsys)[0] == 0
    later = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    code, outcome = check(model, db_url, capsys, "--at", later)
    assert code == 1 and outcome["reason"].startswith("expired"), outcome
    code, _o, err = approve(tmp_path / "r.json", db_url, capsys, "--expires", "2001-01-01")
    assert code == 2 and "past" in err


def test_revoked_approval(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = clean_model(tmp_path / "model")
    _c, out, _e = approve(scan(model, tmp_path / "r.json", capsys), db_url, capsys)
    approval_id = out.strip()
    code, _o, err = run(["approvals", "revoke", approval_id, "--by", "bob", "--reason", "CVE in tokenizer",
                         "--db", db_url], capsys)
    assert code == 0, err
    code, outcome = check(model, db_url, capsys)
    assert code == 1 and outcome["reason"].startswith("revoked") and "CVE in tokenizer" in outcome["reason"]
    code, out, _e = run(["approvals", "show", approval_id, "--db", db_url, "--format", "json"], capsys)
    assert json.loads(out)["status"] == "revoked"
    code, _o, err = run(["approvals", "revoke", approval_id, "--by", "bob", "--reason", "again", "--db", db_url],
                        capsys)
    assert code == 2 and "already revoked" in err
    assert run(["approvals", "verify", "--db", db_url], capsys)[0] == 0


def test_changed_files_are_named(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = clean_model(tmp_path / "model")
    approve(scan(model, tmp_path / "r.json", capsys), db_url, capsys)
    (model / "config.json").write_text('{"model_type": "bert", "auto_map": {"AutoModel": "x.Y"}}\n')
    (model / "modeling_x.py").write_text("import os\n")
    (model / "README.md").unlink()
    code, outcome = check(model, db_url, capsys)
    assert code == 1 and outcome["reason"].startswith("changed files")
    assert outcome["changed"] == {"modified": ["config.json"], "added": ["modeling_x.py"], "removed": ["README.md"]}
    code, out, _e = run(["check", str(model), "--db", db_url], capsys)
    assert code == 1 and "config.json" in out and "modeling_x.py" in out


def test_hf_cache_snapshot_and_lock_file(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = hf_cache_snapshot(tmp_path / "hub", "acme/cached")
    result = scan(snap, tmp_path / "r.json", capsys)
    assert json.loads(result.read_text())["snapshot"]["kind"] == "hf-cache"
    assert approve(result, db_url, capsys)[0] == 0
    code, outcome = check(snap, db_url, capsys)
    assert code == 0, outcome
    assert outcome["approval"]["model"]["repo_id"] == "acme/cached"
    lock = tmp_path / "model.lock"
    assert run(["lock", str(snap), "-o", str(lock), "-q"], capsys)[0] == 0
    assert check(lock, db_url, capsys)[0] == 0
    # the same repo with other bytes: changed files, matched by repo id
    other = hf_cache_snapshot(tmp_path / "hub2", "acme/cached", seed=5)
    code, outcome = check(other, db_url, capsys)
    assert code == 1 and outcome["changed"]["modified"] == ["model.safetensors"]


def _approve_many(url: str, result_file: str, who: str, count: int) -> None:
    from auditor.approvals import registry, results
    from auditor.approvals.store import Store
    loaded = results.load(result_file)
    with Store(url) as store:
        for i in range(count):
            registry.approve(store, loaded, by=who, reason=f"batch {i}")


def test_concurrent_approvals_lose_none(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = scan(clean_model(tmp_path / "model"), tmp_path / "r.json", capsys)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_approve_many, args=(db_url, str(result), who, 12)) for who in ("p1", "p2")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    entries = listed(db_url, capsys)
    assert sorted(e["id"] for e in entries) == list(range(1, 25))
    assert sorted(e["approval"]["by"] for e in entries).count("p1") == 12
    code, out, _e = run(["approvals", "verify", "--db", db_url, "--format", "json"], capsys)
    assert code == 0 and json.loads(out) == {**json.loads(out), "intact": True, "entries": 24, "problems": []}


def _three_approvals(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> sa.Engine:
    for seed in range(3):
        approve(scan(clean_model(tmp_path / f"m{seed}", seed), tmp_path / f"r{seed}.json", capsys), db_url, capsys)
    assert run(["approvals", "verify", "--db", db_url], capsys)[0] == 0
    return sa.create_engine(db_url)


@pytest.mark.parametrize("tamper", [
    "UPDATE entries SET body = replace(body, '\"alice\"', '\"mallory\"') WHERE seq = 2",
    "UPDATE entries SET manifest_digest = 'ab' WHERE seq = 1",
    "DELETE FROM entries WHERE seq = 2",
    "DELETE FROM entries WHERE seq = 3",
])
def test_tampering_is_detected(tamper: str, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = _three_approvals(db_url, tmp_path, capsys)
    with engine.begin() as conn:
        assert conn.execute(sa.text(tamper)).rowcount == 1
    engine.dispose()
    code, out, _e = run(["approvals", "verify", "--db", db_url, "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1 and not report["intact"] and report["problems"], report
    code, out, _e = run(["approvals", "verify", "--db", db_url], capsys)
    assert code == 1 and "TAMPERED" in out


def test_reaudit_after_a_policy_change(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "team.yaml"
    policy.write_text("name: team\nfail_on: critical\nwarn_on: high\n")
    clean = clean_model(tmp_path / "clean")
    noisy = clean_model(tmp_path / "noisy", seed=3)
    (noisy / "README.md").write_text("no license here\n")      # LICENSE-MISSING: medium
    for model in (clean, noisy):
        result = scan(model, tmp_path / f"{model.name}.json", capsys, "--policy", str(policy))
        code, _o, err = approve(result, db_url, capsys, "--policy", str(policy))
        assert code == 0, err
    code, out, _e = run(["approvals", "reaudit", "--db", db_url, "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["no_longer_pass"] == 0
    policy.write_text("name: team\nfail_on: medium\nwarn_on: low\n")   # the team's rules got stricter
    code, out, _e = run(["approvals", "reaudit", "--db", db_url, "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1 and report["reaudited"] == 2 and report["no_longer_pass"] == 1
    [failing] = [r for r in report["approvals"] if not r["still_passes"]]
    assert failing["model"] == str(noisy) and failing["verdict_now"] == "fail" and "LICENSE-MISSING" in failing["reason"]


def test_bad_result_files_record_nothing(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = scan(clean_model(tmp_path / "model"), tmp_path / "r.json", capsys)
    good = json.loads(result.read_text())
    cases = {
        "garbage.json": (b"\x00\xffnot json", "not JSON"),
        "other.json": (json.dumps({"bomFormat": "CycloneDX"}).encode(), "not an auditor result"),
        "v2.json": (json.dumps({**good, "schema": "auditor.report/v2"}).encode(), "not supported"),
        "edited.json": (json.dumps({**good, "files": [{**good["files"][0], "sha256": "0" * 64}, *good["files"][1:]]}
                                   ).encode(), "edited after it was written"),
        "nodigest.json": (json.dumps({k: v for k, v in good.items() if k != "digest"}).encode(), "no digest"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        code, _o, err = approve(tmp_path / name, db_url, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)
    code, _o, err = approve(tmp_path / "missing.json", db_url, capsys)
    assert code == 2 and "no such result file" in err
    code, _o, err = approve(result, db_url, capsys, "--policy", "strict")
    assert code == 2 and "judged by" in err
    code, _o, err = approve(result, db_url, capsys, "--expires", "next week")
    assert code == 2 and "not a date" in err
    assert listed(db_url, capsys) == []


def test_bad_database_url_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _o, err = run(["approvals", "list", "--db", "mysql://x@localhost/db"], capsys)
    assert code == 2 and "unsupported database" in err
    code, _o, err = run(["approvals", "list", "--db", "postgresql://nobody@127.0.0.1:1/none"], capsys)
    assert code == 2 and err.startswith("auditor: error: approvals database") and len(err.strip().splitlines()) == 1


def test_default_database_is_under_the_user_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITOR_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    approve(scan(clean_model(tmp_path / "model"), tmp_path / "r.json", capsys), "", capsys)
    assert (tmp_path / "data" / "auditor" / "approvals.db").is_file()
    monkeypatch.setenv("AUDITOR_DB", f"sqlite:///{tmp_path / 'env.db'}")
    assert run(["approvals", "list", "--format", "json"], capsys)[1].strip() == "[]"
    assert (tmp_path / "env.db").is_file()
