"""`auditor scan TARGET...`: audit one or more models and render the result."""
from __future__ import annotations

import argparse
from typing import Any

from auditor import reports
from auditor.cli.args import Command, echo, file_path, folder_path
from auditor.cli.hub_options import add_hub_arguments, hub_options
from auditor.errors import AuditorError
from auditor.model import Options

SCAN_EPILOG = """\
Output:
  On a terminal a short human summary is printed; piped or redirected, the JSON report.
  -o FILE infers the format from its extension (.json, .cdx.json, .sarif, .md, .html, .pdf);
  --format overrides it. Binary formats (pdf) are never written to a terminal.
  With several targets, -o names a folder (one report per model) and stdout gets a JSON array.

Examples:
  auditor scan ./my-model
  auditor scan ./my-model -o report.pdf --policy strict
  auditor scan hf://Qwen/Qwen3-0.6B@main --metadata-only --format sarif -o qwen.sarif
  auditor scan ./a ./b ./c -o reports/
  auditor scan ./my-model | jq .verdict

Exit codes:
  0  pass or warn    1  the policy failed (any target)    2  an error (one line on stderr)"""


def _policy_help() -> str:
    from auditor.rules import rules_dir
    presets = sorted(p.stem for p in (rules_dir() / "policies").glob("*.yaml"))
    return f"Preset ({', '.join(presets)}) or a policy YAML file."


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="+", metavar="TARGET")
    p.add_argument("--format", dest="fmt", default=None, choices=[*sorted(reports.FORMATS), "summary"],
                   help="Report format [default: from -o's extension; else summary on a terminal, json when piped].")
    p.add_argument("--output", "-o", default="-",
                   help="Report file (or folder, with several targets), or - for stdout. [default: %(default)s]")
    p.add_argument("--policy", default="default", help=_policy_help() + " [default: %(default)s]")
    p.add_argument("--waivers", default="", help="Waivers YAML file (default: ./auditor-waivers.yaml when present).")
    add_hub_arguments(p)
    p.add_argument("--repo-id", default="", help="The Hub repo id (org/name) a local folder came from.")
    p.add_argument("--metadata-only", action="store_true",
                   help="Hub: audit cards, configs, code and hashes without downloading weights.")
    p.add_argument("--verify-key", default="", type=file_path,
                   help="Public key or certificate (PEM) to verify an OpenSSF model-signing signature with.")
    p.add_argument("--deployment", action="append", default=[],   # a path that is no folder is a finding of the scan
                   help="Also scan your serving configuration in this folder.")
    p.add_argument("--no-modelscan", action="store_true", help="Do not run modelscan as a second engine on pickles and archives.")
    p.add_argument("--runtime", action="store_true",
                   help="Also load the model in a sandbox (no network, read-only) and report what it tries to do.")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar and no summary on stderr.")
    p.add_argument("--verbose", "-v", action="store_true", help="Print every finding on stderr.")
    p.add_argument("--sign-key", default="", type=file_path,
                   help="Your PEM private key (Ed25519/ECDSA/RSA): also write the BOM as signed in-toto/DSSE evidence.")
    p.add_argument("--evidence-out", default="", type=file_path,
                   help="Where the signed evidence goes (default: OUTPUT.dsse.json, or auditor-evidence.dsse.json).")
    p.add_argument("--sarif-root", default=None, type=folder_path,
                   help="SARIF: make URIs relative to this folder [default: the git work tree holding the model].")
    p.add_argument("--sarif-threshold", default="low", choices=["info", "low", "medium", "high", "critical"],
                   help="SARIF: lowest severity that becomes a result (the rest go to the run's properties). [default: %(default)s]")


@hub_options
def run(targets: tuple[str, ...], fmt: str | None, output: str, policy: str, waivers: str, hub: dict,
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
            echo(f"  [{f.severity.label}] {f.rule} {f.file} {f.location}".rstrip(), err=True)
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
                echo(f"signed evidence written to {evidence_path}", err=True)
    if not quiet and chosen != "summary":
        for result in results:
            echo(out.summary(result), err=True)
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


command = Command("scan", run, _arguments, summary="Audit models: a folder, a file or hf://org/name[@rev].",
                  epilog=SCAN_EPILOG)
