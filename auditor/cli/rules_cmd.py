"""`auditor rules`: every rule id with its severity and description."""
from __future__ import annotations

import argparse

from auditor.cli.args import Command, echo


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", choices=["text", "json"], default="text", help="[default: %(default)s]")


def run(fmt: str) -> int:
    """List every rule id with severity and description."""
    import json

    from auditor import rules
    catalog = rules.catalog()
    if fmt == "json":
        echo(json.dumps([{"id": r.id, "severity": r.severity.label, "title": r.title,
                                "description": r.description, "remediation": r.remediation,
                                "family": r.family} for r in catalog.values()], indent=2))
        return 0
    width = max(len(r) for r in catalog)
    for r in sorted(catalog.values(), key=lambda r: (r.family, r.id)):
        echo(f"{r.id:<{width}}  {r.severity.label:<8}  {r.title}")
        echo(f"{'':<{width}}  {'':<8}  {r.description}")
    return 0


command = Command("rules", run, _arguments)
