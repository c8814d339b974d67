"""`auditor check TARGET`: exit 0 when TARGET's files match an unexpired, unrevoked approval."""
from __future__ import annotations

import argparse
import json

from auditor.cli.approvals import add_db, add_format
from auditor.cli.args import Command, echo


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target")
    p.add_argument("--endpoint", default="", help="Hub endpoint, when TARGET is a Hub repo.")
    p.add_argument("--at", dest="at_time", default="", help="Check as of this date or ISO date-time instead of now.")
    add_db(p)
    add_format(p)


def run(target: str, endpoint: str, at_time: str, db: str, fmt: str) -> int:
    """Is TARGET (folder, file, HF cache snapshot, hf://org/name@rev, or lock file) approved? Exit 1 if not."""
    from auditor.approvals import registry
    from auditor.cli.approvals import open_store
    at = registry.parse_time(at_time) if at_time else None
    with open_store(db) as store:
        outcome = registry.check(store, target, at=at, endpoint=endpoint)
    if fmt == "json":
        echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    else:
        echo(("OK " if outcome.approved else "NOT APPROVED ") + f"{target}: {outcome.reason}")
    return 0 if outcome.approved else 1


command = Command("check", run, _arguments)
