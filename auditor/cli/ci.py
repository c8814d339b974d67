"""`auditor ci`: the check for model pull requests (auditor/workflows/ci.py), and `auditor pr-comment`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from auditor.errors import AuditorError
from auditor.model import Severity

EXIT_CODES = """\b
Exit codes:
  0  every audited model passed (or nothing model-related changed)
  1  a model failed its policy, could not be audited, is an LFS pointer or has an empty weight,
     or a changed model file was not audited
  2  a usage or configuration error (missing or empty manifest, unknown base ref)
  3  no failure, but at least one model warns (--warn-exit-code changes it; --fail-on warn fails)"""


@click.command("ci", epilog=EXIT_CODES + """

\b
Examples:
  auditor ci                                    # in a PR: models.yaml entries and model folders changed
  auditor ci --base origin/main --fail-on high  # any unwaived high finding fails
  auditor ci --all --policy strict              # every manifest entry
  auditor ci models/a/model.safetensors         # pre-commit: the model folders of these files""")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--manifest", default="models.yaml", show_default=True,
              help="The repository's model manifest ('' for none: audit the model folders of changed files).")
@click.option("--base", default="", help="Base ref to compare with (default: the PR's base branch on GitHub, else HEAD~1).")
@click.option("--all", "audit_all", is_flag=True, help="Audit every manifest entry, not only the changed ones.")
@click.option("--policy", default="default", show_default=True, help="Policy for entries that name none.")
@click.option("--fail-on", type=click.Choice(["fail", "warn", "critical", "high", "medium", "low"]), default="fail",
              show_default=True, help="Fail on the policy's fail (default), also on warn, or on any unwaived "
                                      "finding at or above a severity.")
@click.option("--warn-exit-code", type=click.IntRange(0, 125), default=3, show_default=True,
              help="Exit code when nothing fails but a model warns.")
@click.option("--waivers", default="", help="Waivers file (default: auditor-waivers.yaml at the repository root).")
@click.option("--endpoint", default="", help="Hub endpoint or mirror for hf:// entries.")
@click.option("--sarif", "sarif_path", default=None, help="SARIF output [default: auditor.sarif; none with PATHS].")
@click.option("--sarif-threshold", type=click.Choice([s.label for s in Severity]), default="low", show_default=True,
              help="Lowest severity that becomes a SARIF result (lower ones go to the run's properties).")
@click.option("--markdown", "markdown_path", default=None,
              help="Markdown summary [default: auditor-summary.md; none with PATHS].")
@click.option("--comment", "comment_path", default=None,
              help="PR comment file [default: auditor-comment.md; none with PATHS].")
@click.option("--annotations/--no-annotations", "annotate", default=None,
              help="Print ::error/::warning workflow commands [default: on in GitHub Actions].")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def command(paths: tuple[str, ...], manifest: str, base: str, audit_all: bool, policy: str, fail_on: str,
            warn_exit_code: int, waivers: str, endpoint: str, sarif_path: str | None, sarif_threshold: str,
            markdown_path: str | None, comment_path: str | None, annotate: bool | None, quiet: bool) -> int:
    """Audit the models a change adds or modifies; fail closed.

    Compares the manifest and the changed files with the base ref: added or changed entries, local
    entries whose files changed, and the model folder of every other changed model, code, config or
    template file are audited as whole units. With PATHS (as pre-commit passes them), audit the model
    folders those files belong to, and write reports only when asked.
    """
    from auditor import settings
    from auditor.workflows import ci, ci_outputs

    root = ci.repo_root(Path.cwd())
    if not waivers and (root / "auditor-waivers.yaml").is_file():
        waivers = str(root / "auditor-waivers.yaml")
    manifest_path = Path(manifest) if manifest else None
    run = _plan(root, paths, manifest_path, base, audit_all)
    if not paths:
        sarif_path = sarif_path or "auditor.sarif"
        markdown_path = markdown_path or "auditor-summary.md"
        comment_path = comment_path or "auditor-comment.md"

    def show(item: ci.Item) -> None:
        if not quiet:
            detail = item.error or "; ".join([f"{f.rule} {f.file}" for f in item.gate]
                                             + list(item.result.verdict.reasons[:3] if item.result else ()))
            click.echo(f"{item.decision.upper():5} {item.entry.label} ({item.why})"
                       + (f": {detail}" if detail and item.decision != "pass" else ""), err=True)

    if not quiet and not run.items:
        click.echo("auditor ci: nothing to audit (no model entry or model folder added or changed)", err=True)
    ci.execute(run, policy=policy, waivers=waivers, endpoint=endpoint, fail_on=fail_on,
               manifest_dir=manifest_path.resolve().parent if manifest_path else root, progress=show)
    written = ci.write_outputs(run, sarif_path=sarif_path, markdown_path=markdown_path, comment_path=comment_path,
                               threshold=Severity.parse(sarif_threshold))
    if annotate if annotate is not None else settings.current().github_actions:
        for line in ci_outputs.workflow_commands(run):
            click.echo(line)
    if not quiet:
        for finding in run.gate:
            click.echo(f"FAIL  {finding.file}: {finding.rule}: {finding.title}", err=True)
        for path in written:
            click.echo(f"wrote {path}", err=True)
        click.echo(f"auditor ci: {run.decision.upper()} ({len(run.items)} audit(s))", err=True)
    if run.failed:
        return 1
    return warn_exit_code if run.decision == "warn" else 0


def _plan(root: Path, paths: tuple[str, ...], manifest_path: Path | None, base: str, audit_all: bool) -> Any:
    from auditor.workflows import ci
    if paths:
        return ci.plan_paths(root, paths)
    if audit_all and manifest_path is None:
        raise AuditorError("--all needs a manifest")
    base_commit = ci.EMPTY_TREE if audit_all else ci.resolve_base(root, base)
    return ci.plan(root, manifest_path, base_commit, audit_all)


@click.command("pr-comment")
@click.argument("body_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--pr", "number", type=click.IntRange(1), required=True, help="The pull request's number.")
@click.option("--repo", default="", help="owner/name [default: GITHUB_REPOSITORY].")
@click.option("--api-url", default="", help="GitHub REST API [default: GITHUB_API_URL, else api.github.com].")
def comment_command(body_file: str, number: int, repo: str, api_url: str) -> int:
    """Post BODY_FILE (auditor-comment.md) on a pull request, updating our earlier comment in place.

    Our comment is the one whose first line is the hidden marker `<!-- auditor-ci -->`; no other
    comment is ever edited. The token comes from GH_TOKEN or GITHUB_TOKEN.

    \b
    Exit codes: 0 posted or updated, 2 an error (no token, the API refused).
    """
    from auditor import settings
    from auditor.workflows import ci_outputs, github

    env = settings.current()
    body = Path(body_file).read_text(encoding="utf-8")
    done = github.upsert_comment(api_url or env.github_api_url, repo or env.github_repository, number,
                                 env.github_token, body, ci_outputs.COMMENT_MARKER)
    click.echo(f"auditor: PR comment {done}", err=True)
    return 0
