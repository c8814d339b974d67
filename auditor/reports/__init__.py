"""Renderings of one AuditResult. Each format is a module with `EXTENSION` and
`render(result) -> str | bytes`; they compute nothing new (shared/DESIGN.md)."""
from __future__ import annotations

import importlib
from types import ModuleType

from auditor.errors import AuditorError

# format name -> module under auditor.reports
FORMATS: dict[str, str] = {
    "json": "json_report",
    "cyclonedx": "cyclonedx",
    "cyclonedx-1.7": "cyclonedx_1_7",
    "sarif": "sarif",
    "markdown": "markdown",
    "html": "html",
    "pdf": "pdf",
}


def get(name: str) -> ModuleType:
    try:
        module = FORMATS[name]
    except KeyError:
        raise AuditorError(f"unknown format {name!r}: use one of {', '.join(FORMATS)}") from None
    return importlib.import_module(f"auditor.reports.{module}")
