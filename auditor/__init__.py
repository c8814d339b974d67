"""auditor: a model supply-chain risk auditor.

    import auditor
    result = auditor.audit("path/to/model")                      # or "hf://org/name@rev"
    result = auditor.audit("path/to/model", auditor.Options(policy="strict"))
    result.verdict.decision                                       # "pass" | "warn" | "fail"
    data = result.to_dict()                                       # the JSON report (auditor.report/v1)
    same = auditor.AuditResult.from_dict(data)

Errors the caller can fix raise auditor.AuditorError (one line). The names below are the public API.
"""
from __future__ import annotations

from typing import Any

from auditor.errors import AuditorError
from auditor.model import AuditResult, Claim, ClaimStatus, FileRecord, Finding, Limits, Options, Severity, Verdict

__version__ = "0.2.0"
__all__ = ["AuditResult", "AuditorError", "Claim", "ClaimStatus", "FileRecord", "Finding", "Limits", "Options",
           "Severity", "Verdict", "__version__", "audit"]


def audit(target: str, options: Options | None = None, **kwargs: Any) -> AuditResult:
    """Audit a folder, a file or a Hub repo (`hf://org/name[@revision]`) and return the result.

    `options` (auditor.Options) sets the policy, waivers, revision, endpoint and limits; keyword
    arguments `progress` (called with bytes hashed, total) and `on_finding` (called with each Finding
    as it is found) are passed to the pipeline. Raises AuditorError for a problem with the input.
    """
    from auditor.pipeline import audit as run_pipeline
    return run_pipeline(target, options, **kwargs)
