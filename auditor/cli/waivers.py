"""`auditor waivers check`: expired, soon-expiring and unused waivers."""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from auditor.cli.args import Command, Group, echo
from auditor.errors import AuditorError


def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--waivers", dest="waivers_file", default="", help="Waivers file (default: ./auditor-waivers.yaml).")
    p.add_argument("--policy", default="", help="Also check the waivers inside this policy (preset or file).")
    p.add_argument("--report", dest="report_files", action="append", default=[],
                   help="JSON report(s) of audits (auditor scan --format json): a waiver matching none is unused.")
    p.add_argument("--within", default=30, type=int,
                   help="Warn about waivers expiring within this many days. [default: %(default)s]")


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
        echo(f"EXPIRED  {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    for w in soon:
        echo(f"EXPIRING {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    for w in unused:
        echo(f"UNUSED   {w.expires.isoformat()}  {w.describe()}  [{w.source}]")
    note = "" if audits else "; give --report to find unused ones"
    echo(f"{len(found)} waiver(s): {len(expired)} expired, {len(soon)} expiring within {within} days, "
         f"{len(unused)} unused{note}", err=True)
    return 1 if expired else 0


command = Group("waivers", "Review waivers (reviewed, expiring exceptions for findings).",
                (Command("check", check, _check_arguments),))
