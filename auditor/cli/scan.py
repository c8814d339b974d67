"""`auditor scan TARGET...`: audit one or more models and render the result."""
from __future__ import annotations

from typing import Any

import click

from auditor import reports
from auditor.cli.hub_options import hub_options
from auditor.errors import AuditorError
from auditor.model import Options

SCAN_EPILOG = """\b
Output:
  On a terminal a short human summary is printed; piped or redirected, the JSON report.
  -o FILE infers the format from its extension (.json, .cdx.json, .sarif, .md, .html, .pdf);
  --format overrides it. Binary formats (pdf) are never written to a terminal.
  With several targets, -o names a folder (one report per model) and stdout gets a JSON array.

\b
Examples:
  auditor scan ./my-model
  auditor scan ./my-model -o report.pdf --policy strict
  auditor scan hf://Qwen/Qwen3-0.6B@main --metadata-only --format sarif -o qwen.sarif
  auditor scan ./a ./b ./c -o reports/
  auditor scan ./my-model | jq .verdict

\b
Exit codes:
  0  pass or warn    1  the policy failed (any target)    2  an error (one line on stderr)"""


def _policy_help() -> str:
    from auditor.rules import rules_dir
    presets = sorted(p.stem for p in (rules_dir() / "policies").glob("*.yaml"))
    return f"Preset ({', '.join(presets)}) or a policy YAML file."


@click.command("scan", epilog=SCAN_EPILOG, short_help="Audit models: a folder, a file or hf://org/name[@rev].")
@click.argument("targets", nargs=-1, required=True)
@click.option("--format", "fmt", default=None, type=click.Choice([*sorted(reports.FORMATS), "summary"]),
              help="Report format [default: from -o's extension; else summary on a terminal, json when piped].")
@click.option("--output", "-o", default="-", show_default=True, help="Report file (or folder, with several targets), or - for stdout.")
@click.option("--policy", default="default", show_default=True, help=_policy_help())
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
@click.option("--sarif-root", default=None, type=click.Path(file_okay=False),
              help="SARIF: make URIs relative to this folder [default: the git work tree holding the model].")
@click.option("--sarif-threshold", default="low", show_default=True,
              type=click.Choice(["info", "low", "medium", "high", "critical"]),
              help="SARIF: lowest severity that becomes a result (the rest go to the run's properties).")
def command(targets: tuple[str, ...], fmt: str | None, output: str, policy: str, waivers: str, hub: dict,
            repo_id: str, metadata_only: bool, verify_key: str, deployment: tuple[str, ...], no_modelscan: bool,
            quiet: bool, verbose: bool, sign_key: str = "", evidence_out: str = "", runtime: bool = False,
            sarif_root: str | None = None, sarif_threshold: str = "low") -> int:
    """Audit TARGET: a folder, a file, or hf://org/name[@revision] (several targets: one audit each)."""
    from auditor.cli import output as out
    from auditor.parsers import repoid
    if repo_id and not repoid.is_repo_id(repo_id):
        raise AuditorError(f"--repo-id {repo_id!r} is not a Hub repo id (expected org/name)")
    chosen = out.choose_format(fmt, output, several=len(targets) > 1)
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
    results = []
    for target in targets:
        results.append(_audit_one(target, options, quiet, on_finding))
    render = {"sarif_root": sarif_root, "sarif_threshold": sarif_threshold}
    written = out.emit_results(results, chosen, output, **render)
    if signing_key is not None:
        from auditor.reports import attestation as evidence_signing
        for result, path in zip(results, written, strict=True):
            evidence_path = evidence_out or (f"{path}.dsse.json" if path else "auditor-evidence.dsse.json")
            out.emit(evidence_signing.sign(result, signing_key), evidence_path)
            if not quiet:
                click.echo(f"signed evidence written to {evidence_path}", err=True)
    if not quiet and chosen != "summary":
        for result in results:
            click.echo(out.summary(result), err=True)
    return 1 if any(r.verdict.decision == "fail" for r in results) else 0


def _audit_one(target: str, options: Options, quiet: bool, on_finding: Any) -> Any:
    """One audit; the Hub source (and its HTTP stack, ~15 ms of imports) is loaded only for a Hub target."""
    from auditor import sources
    from auditor.cli import output as out
    from auditor.pipeline import audit
    with out.fetch_progress(quiet) as (progress, downloads):
        if not sources.is_hub_target(target):
            return audit(target, options, progress=progress, on_finding=on_finding)
        from auditor.sources import hub as hub_source
        with hub_source.reporting(downloads):
            result = audit(target, options, progress=progress, on_finding=on_finding)
    hub_source.evict_mismatched(result)
    return result
