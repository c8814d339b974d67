"""`auditor scan TARGET`."""
from __future__ import annotations

import click

from auditor import reports
from auditor.cli.hub_options import hub_options
from auditor.errors import AuditorError
from auditor.model import Options


@click.command("scan")
@click.argument("target")
@click.option("--format", "fmt", default="json", show_default=True,
              type=click.Choice(sorted(reports.FORMATS)), help="Report format.")
@click.option("--output", "-o", default="-", show_default=True, help="Report file, or - for stdout.")
@click.option("--policy", default="default", show_default=True, help="Preset name or policy YAML file.")
@click.option("--waivers", default="", help="Waivers YAML file (default: ./auditor-waivers.yaml when present).")
@hub_options
@click.option("--repo-id", default="", help="The Hub repo id (org/name) a local folder came from.")
@click.option("--metadata-only", is_flag=True, help="Hub: audit cards, configs, code and hashes without downloading weights.")
@click.option("--verify-key", default="", type=click.Path(dir_okay=False),
              help="Public key or certificate (PEM) to verify an OpenSSF model-signing signature with.")
@click.option("--deployment", multiple=True, type=click.Path(), help="Also scan your serving configuration in this folder.")
@click.option("--no-modelscan", is_flag=True, help="Do not run modelscan as a second engine on pickles and archives.")
@click.option("--runtime", is_flag=True,
              help="Also load the model in a sandbox (no network, read-only) and report what it tries to do.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr.")
@click.option("--verbose", "-v", is_flag=True, help="Print every finding on stderr.")
@click.option("--sign-key", default="", type=click.Path(dir_okay=False),
              help="Your PEM private key (Ed25519/ECDSA/RSA): also write the BOM as signed in-toto/DSSE evidence.")
@click.option("--evidence-out", default="", type=click.Path(dir_okay=False),
              help="Where the signed evidence goes (default: OUTPUT.dsse.json, or auditor-evidence.dsse.json).")
def command(target: str, fmt: str, output: str, policy: str, waivers: str, hub: dict, repo_id: str,
            metadata_only: bool, verify_key: str, deployment: tuple[str, ...], no_modelscan: bool, quiet: bool,
            verbose: bool, sign_key: str = "", evidence_out: str = "", runtime: bool = False) -> int:
    """Audit TARGET: a folder, a file, or hf://org/name[@revision]."""
    from auditor.cli import output as out
    from auditor.parsers import repoid
    from auditor.pipeline import audit
    if repo_id and not repoid.is_repo_id(repo_id):
        raise AuditorError(f"--repo-id {repo_id!r} is not a Hub repo id (expected org/name)")
    options = Options(policy=policy, waivers=waivers, repo_id=repo_id, metadata_only=metadata_only, **hub,
                      verify_key=verify_key, deployment=tuple(deployment), runtime=runtime,
                      engines=("auditor",) if no_modelscan else ("auditor", "modelscan"))
    signing_key = None
    if sign_key:   # a bad key fails before any work is done
        from auditor.reports import attestation as evidence_signing
        signing_key = evidence_signing.load_private_key(sign_key)
    on_finding = None
    if verbose and not quiet:
        def on_finding(f):  # type: ignore[no-untyped-def]
            click.echo(f"  [{f.severity.label}] {f.rule} {f.file} {f.location}".rstrip(), err=True)
    from auditor.sources import hub as hub_source
    with out.fetch_progress(quiet) as (progress, downloads), hub_source.reporting(downloads):
        result = audit(target, options, progress=progress, on_finding=on_finding)
    hub_source.evict_mismatched(result)
    out.emit(out.render(result, fmt), output)
    if signing_key is not None:
        evidence_path = evidence_out or (f"{output}.dsse.json" if output not in ("", "-") else "auditor-evidence.dsse.json")
        out.emit(evidence_signing.sign(result, signing_key), evidence_path)
        if not quiet:
            click.echo(f"signed evidence written to {evidence_path}", err=True)
    if not quiet:
        click.echo(out.summary(result), err=True)
    return 1 if result.verdict.decision == "fail" else 0

