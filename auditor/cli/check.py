"""`auditor check TARGET`: exit 0 when TARGET's files match an unexpired, unrevoked approval."""
from __future__ import annotations

import json

import click

from auditor.cli.approvals import db_option, format_option


@click.command("check")
@click.argument("target")
@click.option("--endpoint", default="", help="Hub endpoint, when TARGET is a Hub repo.")
@click.option("--at", "at_time", default="", help="Check as of this date or ISO date-time instead of now.")
@db_option
@format_option
def command(target: str, endpoint: str, at_time: str, db: str, fmt: str) -> int:
    """Is TARGET (folder, file, HF cache snapshot, hf://org/name@rev, or lock file) approved? Exit 1 if not."""
    from auditor.approvals import registry
    from auditor.cli.approvals import open_store
    at = registry.parse_time(at_time) if at_time else None
    with open_store(db) as store:
        outcome = registry.check(store, target, at=at, endpoint=endpoint)
    if fmt == "json":
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(("OK " if outcome.approved else "NOT APPROVED ") + f"{target}: {outcome.reason}")
    return 0 if outcome.approved else 1
