"""`auditor demo`: builds the sample repos with the real libraries, audits them, writes every format."""
from __future__ import annotations

import json
from pathlib import Path

from auditor import reports
from tests.conftest import run_cli


def test_demo_builds_audits_and_writes_every_format(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli("demo", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for stem in ("acme-labs__tiny-clean", "evil-org__tiny-risky"):
        for fmt in reports.FORMATS:
            path = out / f"{stem}{reports.get(fmt).EXTENSION}"
            assert path.is_file() and path.stat().st_size > 0, path
    clean = json.loads((out / "acme-labs__tiny-clean.json").read_text())
    risky = json.loads((out / "evil-org__tiny-risky.json").read_text())
    assert clean["verdict"]["decision"] == "pass", clean["findings"]
    assert not [f for f in clean["findings"] if f["severity"] in ("high", "critical")]
    assert risky["verdict"]["decision"] == "fail"
    risky_rules = {f["rule"] for f in risky["findings"] if f["severity"] in ("high", "critical")}
    assert any(r.startswith("PICKLE-") for r in risky_rules), risky_rules
    assert any(r.startswith(("CODE-", "AUTOMAP-")) for r in risky_rules), risky_rules


def test_demo_into_a_file_path_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    proc = run_cli("demo", str(target))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
