"""The weight-format scanners through the real `auditor scan` command: a hostile repo fails, its
passive-weights claim is refuted by our findings, and the facts reach the JSON report."""
from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from tests.conftest import run_cli
from tests.formats_support import safetensors_bytes


def test_scan_reports_format_findings_and_facts(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    save_file({"w": np.zeros((2, 2), np.float32)}, str(repo / "model.safetensors"), metadata={"license": "mit"})
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    (repo / "extra.safetensors").write_bytes(safetensors_bytes(header, b"\x00" * 16 + b"hidden payload"))
    (repo / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}))
    out = tmp_path / "r.json"
    proc = run_cli("scan", str(repo), "--format", "json", "-o", str(out), "-q")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text())
    rules = {(f["rule"], f["file"]) for f in report["findings"]}
    assert ("SAFETENSORS-TRAILING-DATA", "extra.safetensors") in rules
    assert ("TEMPLATE-SANDBOX-ESCAPE", "tokenizer_config.json") in rules
    claim = next(c for c in report["claims"] if c["id"] == "passive-weights")
    assert claim["status"] == "refuted" and any("TEMPLATE-SANDBOX-ESCAPE" in e for e in claim["evidence"])
    assert report["facts"]["safetensors"]["model.safetensors"]["metadata"] == {"license": "mit"}
