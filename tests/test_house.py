"""One place for each decision: behaviours that went wrong when two layers decided the same thing differently."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from hfcache_support import cache_entry, git_blob_sha1

from auditor.model import Options
from auditor.pipeline import audit


def _cache_snapshot(root: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    commit = "b" * 40
    entries = {rel: (data, git_blob_sha1(data)) for rel, data in files.items()}
    return cache_entry(root, repo_id, entries, commit) / "snapshots" / commit


def test_random_bytes_named_bin_are_not_denied_as_a_pickle_under_strict(tmp_path: Path) -> None:
    """The policy asks the pickle scanner what is a pickle; it no longer guesses from rule-name prefixes.
    Every first byte but PROTO (a protocol header is evidence), seeded: one byte that can begin a pickle
    is not one (CI once met ")" then garbage, and the inventory called it a pickle)."""
    folder = tmp_path / "model"
    folder.mkdir()
    rng = random.Random(24)
    for first in set(range(256)) - {0x80}:
        (folder / f"pytorch_model-{first:03d}.bin").write_bytes(bytes([first]) + rng.randbytes(4095))
    result = audit(str(folder), Options(policy="strict", engines=("auditor",)))
    pickles = result.facts.get("pickle", {}).get("files", {})
    assert not [path for path, info in pickles.items() if info.get("pickles")]
    assert not [rec.path for rec in result.files if rec.format == "pickle"]
    assert not [f for f in result.findings if f.rule in ("POLICY-FORMAT-DENIED", "PICKLE-GLOBAL-DANGEROUS")]


def test_word_lists_that_read_as_a_global_are_text_and_a_text_pickle_that_calls_is_not(tmp_path: Path) -> None:
    """"cython\ntorch\n" reads as GLOBAL ython.torch: it was a disguised executable (high) and two pickle findings.
    Protocol-0 text that goes on to call its global is still a pickle, whatever its name."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "requirements.txt").write_text("cython\ntorch\nnumpy\n")
    (folder / "labels.txt").write_text("cat\ndog\nbird\n")
    (folder / "notes.txt").write_text("cos\nsystem\n(S'id'\ntR\nthe rest is not opcodes\n")
    (folder / "readme.txt").write_text("cbuiltins\neval\n(Vprint(1)\ntR.")
    (folder / "config.json").write_text('{"model_type": "llama"}')
    result = audit(str(folder), Options(engines=("auditor",)))
    formats = {rec.path: rec.format for rec in result.files}
    assert formats["requirements.txt"] == formats["labels.txt"] == "text"
    assert formats["notes.txt"] == formats["readme.txt"] == "pickle"
    flagged = {(f.rule, f.file) for f in result.findings if f.rule.startswith(("PICKLE-", "FORMAT-"))}
    assert not {file for _rule, file in flagged} & {"requirements.txt", "labels.txt"}, flagged
    assert {("PICKLE-GLOBAL-DANGEROUS", "notes.txt"), ("PICKLE-GLOBAL-DANGEROUS", "readme.txt"),
            ("FORMAT-DISGUISED-EXECUTABLE", "notes.txt")} <= flagged, flagged


def test_a_notice_that_opens_with_c_in_brackets_is_text(tmp_path: Path) -> None:
    """"(c) 2024" reads as MARK, GLOBAL to a pickle sniffer: it was a critical finding and an unread license."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "NOTICE").write_text("(c) 2024 Example Labs. All rights reserved.\n\n"
                                   "Licensed under the Apache License, Version 2.0.\n")
    (folder / "config.json").write_text('{"model_type": "llama"}')
    result = audit(str(folder), Options(policy="strict", engines=("auditor",)))
    assert {rec.path: rec.format for rec in result.files}["NOTICE"] == "text"
    assert not [f for f in result.findings if f.rule.startswith("PICKLE-") or f.rule == "POLICY-FORMAT-DENIED"
                or f.rule == "LICENSE-UNVERIFIED"]


def test_a_real_pickle_is_still_denied_under_strict(tmp_path: Path) -> None:
    import pickle

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    result = audit(str(folder), Options(policy="strict", engines=("auditor",)))
    denied = [f for f in result.findings if f.rule == "POLICY-FORMAT-DENIED"]
    assert [f.file for f in denied] == ["pytorch_model.bin"] and "pickle" in denied[0].evidence


def test_one_sensitive_origin_default_for_endpoints_and_provenance(tmp_path: Path) -> None:
    """Under the default policy a CN publisher gets the origin finding as well as the endpoint finding."""
    code = b'API = "https://dashscope.aliyuncs.com/api/v1/services"\n'
    snap = _cache_snapshot(tmp_path, "Qwen/Qwen2-0.5B", {"config.json": b'{"model_type": "qwen2"}',
                                                         "client.py": code})
    result = audit(str(snap), Options(engines=("auditor",)))
    rules_found = {f.rule for f in result.findings}
    assert "PROVENANCE-SENSITIVE-ORIGIN" in rules_found
    assert any(r.startswith("ENDPOINT-ORIGIN-") for r in rules_found), rules_found


def test_a_waivers_file_in_the_working_directory_does_not_load_the_iri_grammar(tmp_path: Path) -> None:
    """Both schema users (policy and waivers) import jsonschema the same way, without rfc3987_syntax."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "auditor-waivers.yaml").write_text(
        "waivers:\n  - rule: LICENSE-MISSING\n    reason: internal model\n    owner: sec\n    expires: 2099-01-01\n")
    probe = ("import sys, json; from auditor.pipeline import audit; from auditor.model import Options; "
             "r = audit('model', Options(engines=('auditor',)));"
             "print(json.dumps({'iri': 'rfc3987_syntax' in sys.modules, "
             "'waived': [f.rule for f in r.findings if f.waived]}))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["iri"] is False
    assert "LICENSE-MISSING" in out["waived"]


def test_a_file_repeating_one_problem_is_capped_with_a_summary_of_the_same_severity(tmp_path: Path) -> None:
    """A hostile file can yield a finding per line; the report keeps 50 per rule and file and counts the rest."""
    from auditor import pipeline

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modeling_x.py").write_text("import os\n" + "".join(f'os.system("echo {i}")\n' for i in range(300)))
    result = audit(str(folder), Options(engines=("auditor",)))
    spawns = [f for f in result.findings if f.file == "modeling_x.py" and f.rule == "CODE-PROCESS"]
    assert len(spawns) == pipeline.MAX_PER_FILE_RULE + 1
    (summary,) = [f for f in spawns if f.location == "(more)"]
    assert summary.severity == max(f.severity for f in spawns)
    assert summary.evidence.startswith("250 more CODE-PROCESS finding(s)")


def test_v1_reports_keep_the_verification_counts_under_provenance_too(tmp_path: Path) -> None:
    """The integrity scanner owns the counts; the v1 report still shows them where it always did."""
    snap = _cache_snapshot(tmp_path, "acme/tiny", {"config.json": b'{"model_type": "tiny"}'})
    facts = audit(str(snap), Options(engines=("auditor",))).facts
    assert facts["integrity"]["verification"]["verified"] == 1
    assert facts["provenance"]["verification"] == facts["integrity"]["verification"]
