"""Absurdly nested JSON, YAML, Jinja and Python in every file a scanner reads: findings, never a crash."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

NESTED_JSON = "[" * 100_000 + "]" * 100_000


def test_deep_nesting_everywhere_fails_closed_without_scanner_errors(tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json", "adapter_config.json",
                 "model.safetensors.index.json", "chat_template.json", "x.ipynb"):
        (tmp_path / name).write_text(NESTED_JSON)
    (tmp_path / "README.md").write_text("---\nlicense: " + "[" * 50_000 + "]" * 50_000 + "\n---\n")
    (tmp_path / "t.jinja").write_text("{{" + "(" * 50_000 + "1" + ")" * 50_000 + "}}")
    (tmp_path / "m.py").write_text("x = " + "(" * 100_000 + "1" + ")" * 100_000)
    proc = run_cli("scan", str(tmp_path), "-q", timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert not [f for f in report["findings"] if f["rule"] == "SCANNER-ERROR"]
    unverified = {f["file"] for f in report["findings"] if f["severity"] in ("medium", "high", "critical")}
    assert {"config.json", "adapter_config.json", "m.py", "t.jinja", "README.md", "x.ipynb"} <= unverified
    assert not [c for c in report["claims"] if c["id"] == "code" and c["status"] == "supported"]
