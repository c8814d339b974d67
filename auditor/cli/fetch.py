"""`auditor fetch TARGET --to DIR`: download pinned and verified, write the audit JSON next to it.

The files are audited in the endpoint's cache first; only when every file matches the publisher's
hash are they copied into a staging folder beside DIR and renamed into place, so DIR never holds a
partial or unverified download. The report goes to `<DIR>.audit.json`.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from auditor.cli.args import Command, echo, file_path, folder_path
from auditor.cli.hub_options import add_hub_arguments, hub_options
from auditor.errors import AuditorError
from auditor.model import Options
from auditor.workflows import lockfile


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target")
    p.add_argument("--to", dest="dest", required=True, type=folder_path, help="Folder to place the model in.")
    add_hub_arguments(p)
    p.add_argument("--policy", default="default", help="Preset name or policy YAML file. [default: %(default)s]")
    p.add_argument("--verify-key", default="", type=file_path,
                   help="Public key or certificate (PEM) to verify a model-signing signature with.")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar and no summary on stderr.")


@hub_options
def run(target: str, dest: str, hub: dict, policy: str, verify_key: str, quiet: bool) -> int:
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
        echo(f"{result.snapshot.repo_id}@{result.snapshot.resolved_revision}: {len(result.files)} file(s) "
             f"verified and placed in {folder}; report {report_path}", err=True)
        echo(out.summary(result), err=True)
    return 1 if result.verdict.decision == "fail" else 0


command = Command("fetch", run, _arguments)
