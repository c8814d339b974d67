"""`--format cyclonedx-1.7`: the same ML-BOM as `cyclonedx` (1.6), labelled and validated as CycloneDX 1.7."""
from __future__ import annotations

from collections.abc import Iterator

from auditor.model import AuditResult
from auditor.reports import cyclonedx

EXTENSION = ".cdx-1.7.json"


def render(result: AuditResult) -> str:
    return cyclonedx.render(result, spec="1.7")


def iter_render(result: AuditResult) -> Iterator[str]:
    return cyclonedx.iter_render(result, spec="1.7")
