"""`auditor ci`: the check for model pull requests (see auditor/ci.py)."""
from __future__ import annotations

from pathlib import Path

import click

from auditor.errors import AuditorError


@click.command("ci")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--manifest", default="models.yaml", show_default=True, help="The repository's model manifest.")
@click.option("--base", default="", help="Base ref to compare with (default: the PR's base branch on GitHub, else HEAD~1).")
@click.option("--all", "audit_all", is_flag=True, help="Audit every manifest entry, not only the changed ones.")
@click.option("--policy", default="default", show_default=True, help="Policy for entries that name none.")
@click.option("--waivers", default="", help="Waivers file (default: auditor-waivers.yaml at the repository root).")
@click.option("--endpoint", default="", help="Hub endpoint or mirror for hf:// entries.")
@click.option("--sarif", "sarif_path", default=None, help="SARIF output [default: auditor.sarif; none with PATHS].")
@click.option("--markdown", "markdown_path", default=None,
              help="Markdown summary [default: auditor-summary.md; none with PATHS].")
@click.option("--comment", "comment_path", default=None,
              help="PR comment file [default: auditor-comment.md; none with PATHS].")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def command(paths: tuple[str, ...], manifest: str, base: str, audit_all: bool, policy: str, waivers: str,
            endpoint: str, sarif_path: str | None, markdown_path: str | None, comment_path: str | None,
            quiet: bool) -> int:
    """Audit the models a change adds or modifies; exit 1 when any fails.

    With PATHS (as pre-commit passes them), audit exactly those files and write reports only when asked.
    Otherwise compare the manifest and the changed files with the base ref.
    """
    from auditor.workflows import ci

    root = ci.repo_root(Path.cwd())
    if not waivers and (root / "auditor-waivers.yaml").is_file():
        waivers = str(root / "auditor-waivers.yaml")
    manifest_path = Path(manifest)
    if paths:
        run = ci.plan_paths(root, paths)
    else:
        if audit_all and not manifest_path.is_file():
            raise AuditorError(f"manifest {manifest} not found")
        base_commit = ci.EMPTY_TREE if audit_all else ci.resolve_base(root, base)
        run = ci.plan(root, manifest_path, base_commit, audit_all)
        sarif_path = sarif_path or "auditor.sarif"
        markdown_path = markdown_path or "auditor-summary.md"
        comment_path = comment_path or "auditor-comment.md"

    def show(item: ci.Item) -> None:
        if not quiet:
            detail = item.error or ("; ".join(item.result.verdict.reasons[:3]) if item.result else "")
            click.echo(f"{item.decision.upper():5} {item.entry.label} ({item.why})"
                       + (f": {detail}" if detail and item.decision != "pass" else ""), err=True)

    if not quiet and not run.items:
        click.echo("auditor ci: nothing to audit (no model entry or model file added or changed)", err=True)
    ci.execute(run, policy=policy, waivers=waivers, endpoint=endpoint,
               manifest_dir=manifest_path.resolve().parent, progress=show)
    written = ci.write_outputs(run, sarif_path=sarif_path, markdown_path=markdown_path, comment_path=comment_path)
    if not quiet:
        for path in written:
            click.echo(f"wrote {path}", err=True)
        click.echo(f"auditor ci: {'FAIL' if run.failed else 'PASS'} ({len(run.items)} audit(s))", err=True)
    return 1 if run.failed else 0
