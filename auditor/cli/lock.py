"""`auditor lock TARGET -o auditor.lock` and `auditor verify TARGET --lock auditor.lock`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from auditor.cli.args import Command, echo, file_path
from auditor.cli.hub_options import add_hub_arguments, hub_options
from auditor.model import Options


def _lock_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target")
    p.add_argument("--output", "-o", default="auditor.lock", help="Lock file to write. [default: %(default)s]")
    p.add_argument("--report", default="", help="Also write the audit JSON (whose digest the lock records) here.")
    add_hub_arguments(p)
    p.add_argument("--policy", default="default", help="Preset name or policy YAML file. [default: %(default)s]")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar and no summary on stderr.")


@hub_options
def lock(target: str, output: str, report: str, hub: dict, policy: str, quiet: bool) -> int:
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
        echo(f"not locked: {len(failed)} file(s) failed verification, first {failed[0].rule} "
             f"{failed[0].file or failed[0].evidence[:120]}; no lock file written", err=True)
        return 1
    lock = lockfile.build(result, report_json)
    lockfile.write(output, lock)
    if not quiet:
        where = f"{lock['repo_id']}@{lock['commit']}" if lock["commit"] else target
        echo(f"locked {len(lock['files'])} file(s) of {where} in {output} "
             f"(audit verdict: {lock['audit']['verdict']})", err=True)
    return 0


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target")
    p.add_argument("--lock", dest="lock_path", required=True, type=file_path, help="Lock file to check against.")
    p.add_argument("--format", dest="fmt", default="text", choices=["text", "json"], help="[default: %(default)s]")
    p.add_argument("--output", "-o", default="-", help="Result file, or - for stdout. [default: %(default)s]")
    add_hub_arguments(p)


@hub_options
def verify(target: str, lock_path: str, fmt: str, output: str, hub: dict) -> int:
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


command = Command("lock", lock, _lock_arguments)
verify_command = Command("verify", verify, _verify_arguments)
