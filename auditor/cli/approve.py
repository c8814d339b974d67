"""`auditor approve RESULT.json --by NAME --reason TEXT`: record an approval in the registry."""
from __future__ import annotations

import argparse

from auditor.cli.approvals import add_db, open_store
from auditor.cli.args import Command, echo, file_path


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result_file", type=file_path)
    p.add_argument("--by", required=True, help="Who approves.")
    p.add_argument("--reason", required=True, help="Why it is approved.")
    p.add_argument("--expires", default="", help="Last day the approval is valid (YYYY-MM-DD, UTC) or an ISO date-time.")
    p.add_argument("--ticket", default="", help="Change or review ticket id.")
    p.add_argument("--override", default="", help="Approve a result whose verdict is fail; the reason is recorded.")
    p.add_argument("--policy", dest="policy_source", default="",
                   help="The policy file the result was judged by (kept for reaudit; default: its preset name).")
    p.add_argument("--evidence", action="append", default=[], type=file_path,
                   help="Another evidence file (signed BOM, review notes) whose SHA-256 is recorded.")
    add_db(p)


def run(result_file: str, by: str, reason: str, expires: str, ticket: str, override: str,
            policy_source: str, evidence: tuple[str, ...], db: str) -> int:
    """Approve the model audited in RESULT_FILE (an `auditor scan` JSON result) for its exact files."""
    from auditor.approvals import registry, results
    loaded = results.load(result_file)      # a bad result fails before the database is touched
    with open_store(db) as store:
        entry = registry.approve(store, loaded, by=by, reason=reason, expires=expires, ticket=ticket,
                                 override=override, policy_source=policy_source, evidence=evidence)
    kind = "OVERRIDE approval" if override else "approval"
    echo(f"{kind} {entry.seq} recorded: manifest sha256:{entry.manifest_digest} "
         f"({loaded.result.verdict.decision} under {loaded.result.verdict.policy})", err=True)
    echo(str(entry.seq))
    return 0


command = Command("approve", run, _arguments)
