"""Real git repositories for the CI-gate tests: a git runner with a fixed identity, and the SARIF schema."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"
if not SARIF_SCHEMA.is_file():
    SARIF_SCHEMA = Path("/work/shared/schemas/sarif-schema-2.1.0.json")
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def ci_env(**extra: str) -> dict[str, str]:
    """The environment without the runner's GITHUB_* variables, with the git identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return {**env, **GIT_ENV, **extra}
