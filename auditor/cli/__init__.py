"""The `auditor` command: thin wrappers that parse options, call the API, render and exit.

Exit codes: 0 pass (or warn), 1 policy fail, 2 error. Errors are one line on stderr, no traceback
(set AUDITOR_DEBUG=1 to see one).
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from auditor import __version__, settings
from auditor.cli.args import Command, Group, echo, invoke, listing, new_parser
from auditor.errors import AuditorError

# command name -> (module in auditor.cli, attribute): a command's module (and what it imports) is loaded
# only when that command runs, so `auditor scan` does not pay for `fetch`, `ci` or `approvals`.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "command"), "rules": ("rules_cmd", "command"), "demo": ("demo", "command"),
    "ci": ("ci", "command"), "pr-comment": ("ci", "comment_command"), "waivers": ("waivers", "command"),
    "report": ("report", "command"), "verify-evidence": ("evidence", "command"), "fetch": ("fetch", "command"),
    "lock": ("lock", "command"), "verify": ("lock", "verify_command"), "approve": ("approve", "command"),
    "approvals": ("approvals", "command"), "check": ("check", "command"), "batch": ("batch", "command"),
}

DESCRIPTION = "Audit open-weight models before they reach production."
EPILOG = """\
Examples:
  auditor scan ./my-model                  # a summary on the terminal, JSON when piped
  auditor scan ./my-model -o report.pdf    # the format follows the extension
  auditor ci                               # the pull-request check (see `auditor ci --help`)

Exit codes: 0 pass (or warn), 1 the policy failed, 2 an error (one line on stderr);
`auditor ci` also 3 for a warning."""


def load(name: str) -> Command | Group:
    import importlib
    module, attribute = COMMANDS[name]
    entry: Command | Group = getattr(importlib.import_module(f"auditor.cli.{module}"), attribute)
    return entry


def _root_parser(*, listed: bool) -> argparse.ArgumentParser:
    """The parser of `auditor` itself; `listed` adds every command with its whole first help line to the
    help (which loads every command's module: only for --help)."""
    epilog = f"{listing('Commands', [load(name) for name in sorted(COMMANDS)])}\n\n{EPILOG}" if listed else EPILOG
    parser = new_parser("auditor", DESCRIPTION, epilog, usage="auditor [-h] [--version] COMMAND ...")
    parser.add_argument("--version", action="version", version=f"auditor, version {__version__}",
                        help="show the version and exit")
    return parser


def run(argv: list[str]) -> int:
    """Dispatch to the command named first; the root parser handles --help, --version and a bad name."""
    if argv and argv[0] in COMMANDS:
        return invoke(load(argv[0]), argv[1:], f"auditor {argv[0]}")
    parser = _root_parser(listed=not argv or argv[0] in ("-h", "--help"))
    if not argv:
        parser.print_help()
        return 2
    if argv[0].startswith("-"):
        parser.parse_args(argv)         # --help, --version (both exit) or an unknown option (exits 2)
    parser.error(f"no such command {argv[0]!r} (see auditor --help)")
    return 2


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)        # unwinds, so temp files are removed on the way out


def _robust_streams() -> None:
    """A console that cannot show a character (cp1252 on Windows) gets an escape, never a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def main(argv: list[str] | None = None) -> None:
    _robust_streams()
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:      # not the main thread (embedded use)
        pass
    try:
        code = run(sys.argv[1:] if argv is None else list(argv))
    except AuditorError as exc:
        echo(f"auditor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("auditor: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 2
        if settings.current().debug:
            raise
        echo(f"auditor: internal error: {type(exc).__name__}: {exc} (AUDITOR_DEBUG=1 for details)", err=True)
        sys.exit(2)
    sys.exit(code)
