"""`auditor lock TARGET -o auditor.lock` and `auditor verify TARGET --lock auditor.lock`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from auditor.cli.hub_options import hub_options
from auditor.model import Options


@click.command("lock")
@click.argument("target")
@click.option("--output", "-o", default="auditor.lock", show_default=True, help="Lock file to write.")
@click.option("--report", default="", help="Also write the audit JSON (whose digest the lock records) here.")
@hub_options
@click.option("--policy", default="default", show_default=True, help="Preset name or policy YAML file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr.")
def command(target: str, output: str, report: str, hub: dict, policy: str, quiet: bool) -> int:
    """Audit TARGET and write a lock file: commit, every file's size and SHA-256, the audit digest."""
    from auditor import atomic
    from auditor.cli import output as out
    from auditor.pipeline import audit
    from auditor.reports import json_report
    from auditor.sources import hub as hub_source
    from auditor.workflows import lockfile
    options = Options(policy=policy, **hub)
    with out.fetch_progress(quiet) as (progress, downloads), hub_source.reporting(downloads):
        result = audit(target, options, progress=progress)  # type: ignore[arg-type]
    hub_source.evict_mismatched(result)
    report_json = json_report.render(result)
    if report:
        atomic.write(report, report_json)
    failed = lockfile.verification_failures(result)
    if failed:
        click.echo(f"not locked: {len(failed)} file(s) failed verification, first {failed[0].rule} "
                   f"{failed[0].file or failed[0].evidence[:120]}; no lock file written", err=True)
        return 1
    lock = lockfile.build(result, report_json)
    lockfile.write(output, lock)
    if not quiet:
        where = f"{lock['repo_id']}@{lock['commit']}" if lock["commit"] else target
        click.echo(f"locked {len(lock['files'])} file(s) of {where} in {output} "
                   f"(audit verdict: {lock['audit']['verdict']})", err=True)
    return 0


@click.command("verify")
@click.argument("target")
@click.option("--lock", "lock_path", required=True, type=click.Path(dir_okay=False), help="Lock file to check against.")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.option("--output", "-o", default="-", show_default=True, help="Result file, or - for stdout.")
@hub_options
def verify_command(target: str, lock_path: str, fmt: str, output: str, hub: dict) -> int:
    """Check that TARGET (a deployed folder, or a Hub repo) still matches the lock file. Exit 1 on drift."""
    from auditor import inventory, sources
    from auditor.cli import output as out
    from auditor.workflows import lockfile

    lock = lockfile.read(lock_path)
    revision = lock.get("commit", "") if sources.is_hub_target(target) and "@" not in target else ""
    options = Options(**{**hub, "endpoint": hub["endpoint"] or lock.get("endpoint", ""),
                         "revision": hub["revision"] or revision})
    snapshot = sources.open_snapshot(target, options)
    inv = inventory.build(snapshot, options)
    root = Path(snapshot.root).resolve()
    ignore = set()
    for own in (Path(lock_path).resolve(),):
        if root in own.parents:
            ignore.add(own.relative_to(root).as_posix())
    findings = lockfile.compare(lock, inv.files, ignore)
    findings += [f for f in inv.findings if f.rule == "INVENTORY-UNREADABLE"]
    if fmt == "json":
        out.emit(json.dumps({"lock": lock_path, "target": target, "commit": lock.get("commit", ""),
                             "drift": bool(findings), "files_checked": len(inv.files),
                             "findings": [f.to_dict() for f in findings]}, indent=2) + "\n", output)
    else:
        lines = [f"[{f.severity.label}] {f.rule} {f.file}: {f.evidence}" for f in findings]
        verdict = (f"DRIFT: {len(findings)} difference(s) from {lock_path}" if findings
                   else f"OK: {len(inv.files)} file(s) match {lock_path}")
        out.emit("\n".join([*lines, verdict]) + "\n", output)
    return 1 if findings else 0
