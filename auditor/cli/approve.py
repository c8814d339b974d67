"""`auditor approve RESULT.json --by NAME --reason TEXT`: record an approval in the registry."""
from __future__ import annotations

import click

from auditor.cli.approvals import db_option, open_store


@click.command("approve")
@click.argument("result_file", type=click.Path(dir_okay=False))
@click.option("--by", required=True, help="Who approves.")
@click.option("--reason", required=True, help="Why it is approved.")
@click.option("--expires", default="", help="Last day the approval is valid (YYYY-MM-DD, UTC) or an ISO date-time.")
@click.option("--ticket", default="", help="Change or review ticket id.")
@click.option("--override", default="", help="Approve a result whose verdict is fail; the reason is recorded.")
@click.option("--policy", "policy_source", default="",
              help="The policy file the result was judged by (kept for reaudit; default: its preset name).")
@click.option("--evidence", multiple=True, type=click.Path(dir_okay=False),
              help="Another evidence file (signed BOM, review notes) whose SHA-256 is recorded.")
@db_option
def command(result_file: str, by: str, reason: str, expires: str, ticket: str, override: str,
            policy_source: str, evidence: tuple[str, ...], db: str) -> int:
    """Approve the model audited in RESULT_FILE (an `auditor scan` JSON result) for its exact files."""
    from auditor.approvals import registry, results
    loaded = results.load(result_file)      # a bad result fails before the database is touched
    with open_store(db) as store:
        entry = registry.approve(store, loaded, by=by, reason=reason, expires=expires, ticket=ticket,
                                 override=override, policy_source=policy_source, evidence=evidence)
    kind = "OVERRIDE approval" if override else "approval"
    click.echo(f"{kind} {entry.seq} recorded: manifest sha256:{entry.manifest_digest} "
               f"({loaded.result.verdict.decision} under {loaded.result.verdict.policy})", err=True)
    click.echo(str(entry.seq))
    return 0
