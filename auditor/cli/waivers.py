"""`auditor waivers check`: expired, soon-expiring and unused waivers."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from auditor.errors import AuditorError


@click.group("waivers")
def command() -> None:
    """Review waivers (reviewed, expiring exceptions for findings)."""


@command.command("check")
@click.option("--waivers", "waivers_file", default="", help="Waivers file (default: ./auditor-waivers.yaml).")
@click.option("--policy", default="", help="Also check the waivers inside this policy (preset or file).")
@click.option("--report", "report_files", multiple=True, type=click.Path(),
              help="JSON report(s) of audits (auditor scan --format json): a waiver matching none is unused.")
@click.option("--within", default=30, show_default=True, help="Warn about waivers expiring within this many days.")
def check(waivers_file: str, policy: str, report_files: tuple[str, ...], within: int) -> int:
    """List expired and unused waivers; exit 1 when any has expired."""
    from auditor.judge import policy as policies
    from auditor.judge import waivers
    from auditor.reports import json_report

    found = list(waivers.discover(waivers_file))
    if policy:
        found += policies.load(policy).waivers
    if not found:
        raise AuditorError("no waivers found (give --waivers FILE, or create ./auditor-waivers.yaml)")
    today = dt.date.today()
    audits = []
    for path in report_files:
        try:
            result = json_report.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditorError(f"report {path}: not a readable auditor JSON report ({exc})") from None
        audits.append((result.snapshot, result.findings))
    expired = [w for w in found if w.expired(today)]
    soon = [w for w in found if not w.expired(today) and (w.expires - today).days <= within]
    unused = waivers.unused(found, audits) if audits else []
    for w in expired:
        click.echo(f"EXPIRED  {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    for w in soon:
        click.echo(f"EXPIRING {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    for w in unused:
        click.echo(f"UNUSED   {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    note = "" if audits else "; give --report to find unused ones"
    click.echo(f"{len(found)} waiver(s): {len(expired)} expired, {len(soon)} expiring within {within} days, "
               f"{len(unused)} unused{note}", err=True)
    return 1 if expired else 0
