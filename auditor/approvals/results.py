"""Reading an audit result to approve: only an intact `auditor.report/v1` JSON is accepted."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError
from auditor.model import AuditResult
from auditor.record import record
from auditor.reports import json_report

MAX_RESULT_BYTES = 512 * 1024 * 1024


@record(frozen=True)
class LoadedResult:
    path: str
    sha256: str                   # of the file's bytes
    data: dict[str, Any]
    result: AuditResult

    @property
    def digest(self) -> str:
        return str(self.data["digest"])

    @property
    def rules_digest(self) -> str:
        return str(self.data.get("tool", {}).get("rules", ""))


def load(path: str) -> LoadedResult:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_RESULT_BYTES:
            raise AuditorError(f"{path}: larger than {MAX_RESULT_BYTES} bytes; not an auditor result")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise AuditorError(f"no such result file: {path}") from None
    except OSError as exc:
        raise AuditorError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise AuditorError(f"{path}: not an auditor result (not JSON)") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("auditor.report/"):
        raise AuditorError(f"{path}: not an auditor result (no auditor.report schema)")
    if data["schema"] != json_report.SCHEMA:
        raise AuditorError(f"{path}: result schema {data['schema']!r} is not supported (expected {json_report.SCHEMA!r})")
    if "digest" not in data:
        raise AuditorError(f"{path}: the result carries no digest (written by an older auditor); re-run the audit")
    if not json_report.verify_digest(data):
        raise AuditorError(f"{path}: the result was edited after it was written (its digest does not match)")
    try:
        result = json_report.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditorError(f"{path}: malformed auditor result ({type(exc).__name__}: {exc})") from None
    return LoadedResult(path=str(p.resolve()), sha256=hashlib.sha256(raw).hexdigest(), data=data, result=result)
