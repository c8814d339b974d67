"""The canonical JSON report round-trips, and a report from a newer version (added keys) still loads."""
from __future__ import annotations

import json
from pathlib import Path

from auditor.pipeline import audit
from auditor.reports import json_report
from auditor.workflows import demo


def test_round_trip_and_forward_compatible(tmp_path: Path) -> None:
    result = audit(str(demo.build_risky(tmp_path / "risky")))
    saved = json.loads(json_report.render(result))
    assert json.loads(json_report.render(json_report.from_dict(saved))) == saved
    newer = json.loads(json.dumps(saved))
    newer["snapshot"]["added_in_v1_1"] = "x"
    newer["files"][0]["entropy"] = 7.9
    newer["findings"][0]["cwe"] = "CWE-502"
    newer["snapshot"]["ancestors"] = [{"repo_id": "a/b", "future": 1}]
    again = json_report.from_dict(newer)
    assert again.findings[0].rule == result.findings[0].rule
    assert again.snapshot.ancestors[0].repo_id == "a/b"
