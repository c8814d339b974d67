"""The policy's geography (sensitive origins, the user's region, accepted jurisdictions), resolved once.

Scanners grade by the resulting `Regions`; they never read policy settings themselves, so every part of
the tool sees the same sensitive-origin list with the same default (rules/regions.yaml).
"""
from __future__ import annotations

from typing import Any

from auditor import rules
from auditor.model import Regions


def default_sensitive_origins() -> frozenset[str]:
    return frozenset(str(c).upper() for c in rules.load("regions.yaml")["default_sensitive_origins"])


def of(settings: dict[str, Any]) -> Regions:
    """Regions from a policy's settings; a policy without `sensitive_origins` gets the default list."""
    sensitive = settings.get("sensitive_origins")
    allowed = settings.get("allowed_jurisdictions") or ()
    if isinstance(allowed, str):
        allowed = (allowed,)
    return Regions(
        sensitive_origins=(frozenset(str(c).upper() for c in sensitive) if sensitive
                           else default_sensitive_origins()),
        user_region=str(settings.get("user_region") or "").upper(),
        allowed_jurisdictions=tuple(str(a).upper() for a in allowed),
    )
