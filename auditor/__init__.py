"""auditor: a model supply-chain risk auditor.

    from auditor import audit
    result = audit("path/to/model")          # or "hf://org/name@rev"
    result.verdict.decision                  # "pass" | "warn" | "fail"
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = ["audit", "__version__"]

if TYPE_CHECKING:
    from auditor.model import AuditResult


def audit(target: str, options: Any = None, **kwargs: Any) -> AuditResult:
    """Audit a folder, a file or a Hub repo; see auditor.pipeline.audit."""
    from auditor.pipeline import audit as _audit
    return _audit(target, options, **kwargs)
