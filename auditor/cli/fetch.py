"""`auditor fetch TARGET --to DIR`: download pinned and verified, write the audit JSON next to it.

The files are audited in the endpoint's cache first; only when every file matches the publisher's
hash are they copied into a staging folder beside DIR and renamed into place, so DIR never holds a
partial or unverified download. The report goes to `<DIR>.audit.json`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from auditor.cli.hub_options import hub_options
from auditor.errors import AuditorError
from auditor.model import Options
from auditor.workflows import lockfile


@click.command("fetch")
@click.argument("target")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False), help="Folder to place the model in.")
@hub_options
@click.option("--policy", default="default", show_default=True, help="Preset name or policy YAML file.")
@click.option("--verify-key", default="", type=click.Path(dir_okay=False),
              help="Public key or certificate (PEM) to verify a model-signing signature with.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr.")
def command(target: str, dest: str, hub: dict, policy: str, verify_key: str, quiet: bool) -> int:
    """Download TARGET (hf://org/name[@rev]) pinned and verified into DIR; write DIR.audit.json."""
    from auditor import atomic, sources
    from auditor.cli import output as out
    from auditor.pipeline import audit
    from auditor.reports import json_report
    from auditor.sources import hub as hub_source

    if not sources.is_hub_target(target):
        raise AuditorError(f"{target}: fetch takes a Hub target (hf://org/name[@revision])")
    folder = Path(dest).expanduser().absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise AuditorError(f"{dest} exists and is not an empty folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    options = Options(policy=policy, verify_key=verify_key, **hub)
    with out.fetch_progress(quiet) as (progress, downloads), hub_source.reporting(downloads):
        result = audit(target, options, progress=progress)  # type: ignore[arg-type]
    hub_source.evict_mismatched(result)
    report_path = folder.parent / f"{folder.name}.audit.json"
    atomic.write(report_path, json_report.render(result))
    blocking = lockfile.verification_failures(result)
    if blocking:
        first = blocking[0]
        raise AuditorError(f"not placed in {dest}: {first.rule} {first.file} ({len(blocking)} blocking finding(s)); "
                           f"see {report_path}")
    staging = atomic.make_temp_dir(folder.parent, f".{folder.name}.partial-")
    try:
        # only what the publisher lists (and so was verified): a stray file in the cache is not placed
        listed = [f.path for f in result.files if f.path in result.snapshot.publisher_hashes]
        hub_source.copy_snapshot(Path(result.snapshot.root), staging, paths=listed)
        if folder.exists():
            folder.rmdir()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not quiet:
        click.echo(f"{result.snapshot.repo_id}@{result.snapshot.resolved_revision}: {len(result.files)} file(s) "
                   f"verified and placed in {folder}; report {report_path}", err=True)
        click.echo(out.summary(result), err=True)
    return 1 if result.verdict.decision == "fail" else 0
