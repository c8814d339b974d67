"""Shared test helpers for the spine. Colleagues' fixtures live in their own modules."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `auditor` entry point in a child process."""
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@dataclasses.dataclass
class Invocation:
    exit_code: int
    output: str                      # stdout and stderr, interleaved
    exception: BaseException | None  # what the command raised (main() would make it one line and an exit code)


def invoke(argv: list[str]) -> Invocation:
    """Run a command in this process, as `auditor ARGV` without main()'s error handling."""
    import contextlib
    import io

    from auditor.cli import run
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            return Invocation(run(argv), buffer.getvalue(), None)
        except SystemExit as exc:
            return Invocation(exc.code if isinstance(exc.code, int) else 1, buffer.getvalue(), None)
        except Exception as exc:  # noqa: BLE001 - handed to the test, as click's CliRunner did
            return Invocation(1, buffer.getvalue(), exc)
