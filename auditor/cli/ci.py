"""`auditor ci`: the check for model pull requests (auditor/workflows/ci.py), and `auditor pr-comment`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from auditor.cli.args import Command, echo, existing_file, int_range
from auditor.errors import AuditorError
from auditor.model import Severity

EXIT_CODES = """\
Exit codes:
  0  every audited model passed (or nothing model-related changed)
  1  a model failed its policy, could not be audited, is an LFS pointer or has an empty weight,
     or a changed model file was not audited
  2  a usage or configuration error (missing or empty manifest, unknown base ref)
  3  no failure, but at least one model warns (--warn-exit-code changes it; --fail-on warn fails)"""


CI_EPILOG = EXIT_CODES + """

Examples:
  auditor ci                                    # in a PR: models.yaml entries and model folders changed
  auditor ci --base origin/main --fail-on high  # any unwaived high finding fails
  auditor ci --all --policy strict              # every manifest entry
  auditor ci models/a/model.safetensors         # pre-commit: the model folders of these files"""


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--manifest", default="models.yaml",
                   help="The repository's model manifest ('' for none: audit the model folders of changed files). [default: %(default)s]")
    p.add_argument("--base", default="", help="Base ref to compare with (default: the PR's base branch on GitHub, else HEAD~1).")
    p.add_argument("--all", dest="audit_all", action="store_true", help="Audit every manifest entry, not only the changed ones.")
    p.add_argument("--policy", default="default", help="Policy for entries that name none. [default: %(default)s]")
    p.add_argument("--fail-on", choices=["fail", "warn", "critical", "high", "medium", "low"], default="fail",
                   help="Fail on the policy's fail (default), also on warn, or on any unwaived finding at or above a "
                        "severity. [default: %(default)s]")
    p.add_argument("--warn-exit-code", type=int_range(0, 125), default=3,
                   help="Exit code when nothing fails but a model warns (0-125). [default: %(default)s]")
    p.add_argument("--waivers", default="", help="Waivers file (default: auditor-waivers.yaml at the repository root).")
    p.add_argument("--endpoint", default="", help="Hub endpoint or mirror for hf:// entries.")
    p.add_argument("--sarif", dest="sarif_path", default=None, help="SARIF output [default: auditor.sarif; none with PATHS].")
    p.add_argument("--sarif-threshold", choices=[s.label for s in Severity], default="low",
                   help="Lowest severity that becomes a SARIF result (lower ones go to the run's properties). [default: %(default)s]")
    p.add_argument("--markdown", dest="markdown_path", default=None,
                   help="Markdown summary [default: auditor-summary.md; none with PATHS].")
    p.add_argument("--comment", dest="comment_path", default=None,
                   help="PR comment file [default: auditor-comment.md; none with PATHS].")
    p.add_argument("--annotations", dest="annotate", default=None, action=argparse.BooleanOptionalAction,
                   help="Print ::error/::warning workflow commands [default: on in GitHub Actions].")
    p.add_argument("--quiet", "-q", action="store_true", help="Print nothing but errors.")


def run_ci(paths: tuple[str, ...], manifest: str, base: str, audit_all: bool, policy: str, fail_on: str,
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
            echo(f"{item.decision.upper():5} {item.entry.label} ({item.why})"
                 + (f": {detail}" if detail and item.decision != "pass" else ""), err=True)

    if not quiet and not run.items:
        echo("auditor ci: nothing to audit (no model entry or model folder added or changed)", err=True)
    ci.execute(run, policy=policy, waivers=waivers, endpoint=endpoint, fail_on=fail_on,
               manifest_dir=manifest_path.resolve().parent if manifest_path else root, progress=show)
    written = ci.write_outputs(run, sarif_path=sarif_path, markdown_path=markdown_path, comment_path=comment_path,
                               threshold=Severity.parse(sarif_threshold))
    if annotate if annotate is not None else settings.current().github_actions:
        for line in ci_outputs.workflow_commands(run):
            echo(line)
    if not quiet:
        for finding in run.gate:
            echo(f"FAIL  {finding.file}: {finding.rule}: {finding.title}", err=True)
        for path in written:
            echo(f"wrote {path}", err=True)
        echo(f"auditor ci: {run.decision.upper()} ({len(run.items)} audit(s))", err=True)
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


def _comment_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("body_file", type=existing_file)
    p.add_argument("--pr", dest="number", type=int_range(1), required=True, help="The pull request's number.")
    p.add_argument("--repo", default="", help="owner/name [default: GITHUB_REPOSITORY].")
    p.add_argument("--api-url", default="", help="GitHub REST API [default: GITHUB_API_URL, else api.github.com].")


def comment(body_file: str, number: int, repo: str, api_url: str) -> int:
    """Post BODY_FILE (auditor-comment.md) on a pull request, updating our earlier comment in place.

    Our comment is the one whose first line is the hidden marker `<!-- auditor-ci -->`; no other
    comment is ever edited. The token comes from GH_TOKEN or GITHUB_TOKEN.

    Exit codes: 0 posted or updated, 2 an error (no token, the API refused).
    """
    from auditor import settings
    from auditor.workflows import ci_outputs, github

    env = settings.current()
    body = Path(body_file).read_text(encoding="utf-8")
    done = github.upsert_comment(api_url or env.github_api_url, repo or env.github_repository, number,
                                 env.github_token, body, ci_outputs.COMMENT_MARKER)
    echo(f"auditor: PR comment {done}", err=True)
    return 0


command = Command("ci", run_ci, _arguments, epilog=CI_EPILOG)
comment_command = Command("pr-comment", comment, _comment_arguments)
