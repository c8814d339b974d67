"""`auditor scan TARGET`."""
from __future__ import annotations

import click

from auditor import reports
from auditor.model import Options


@click.command("scan")
@click.argument("target")
@click.option("--format", "fmt", default="json", show_default=True,
              type=click.Choice(sorted(reports.FORMATS)), help="Report format.")
@click.option("--output", "-o", default="-", show_default=True, help="Report file, or - for stdout.")
@click.option("--policy", default="default", show_default=True, help="Preset name or policy YAML file.")
@click.option("--waivers", default="", help="Waivers YAML file (default: ./auditor-waivers.yaml when present).")
@click.option("--revision", default="", help="Hub revision (branch, tag or commit) to audit.")
@click.option("--endpoint", default="", help="Hub endpoint or mirror URL (default: HF_ENDPOINT, then the public Hub).")
@click.option("--metadata-only", is_flag=True, help="Hub: audit cards, configs, code and hashes without downloading weights.")
@click.option("--verify-key", default="", type=click.Path(dir_okay=False),
              help="Public key or certificate (PEM) to verify an OpenSSF model-signing signature with.")
@click.option("--deployment", multiple=True, type=click.Path(), help="Also scan your serving configuration in this folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr.")
@click.option("--verbose", "-v", is_flag=True, help="Print every finding on stderr.")
def command(target: str, fmt: str, output: str, policy: str, waivers: str, revision: str, endpoint: str,
            metadata_only: bool, verify_key: str, deployment: tuple[str, ...], quiet: bool, verbose: bool) -> int:
    """Audit TARGET: a folder, a file, or hf://org/name[@revision]."""
    from auditor.audit import audit
    from auditor.cli import output as out

    options = Options(policy=policy, waivers=waivers, revision=revision, endpoint=endpoint, metadata_only=metadata_only,
                      verify_key=verify_key, deployment=tuple(deployment))
    on_finding = None
    if verbose and not quiet:
        def on_finding(f):  # type: ignore[no-untyped-def]
            click.echo(f"  [{f.severity.label}] {f.rule} {f.file} {f.location}".rstrip(), err=True)
    with out.hashing_progress(quiet) as progress:
        result = audit(target, options, progress=progress, on_finding=on_finding)
    out.emit(out.render(result, fmt), output)
    if not quiet:
        click.echo(out.summary(result), err=True)
    return 1 if result.verdict.decision == "fail" else 0

