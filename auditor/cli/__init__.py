"""The `auditor` command: thin wrappers that parse options, call the API, render and exit.

Exit codes: 0 pass (or warn), 1 policy fail, 2 error. Errors are one line on stderr, no traceback
(set AUDITOR_DEBUG=1 to see one).
"""
from __future__ import annotations

import signal
import sys
from typing import Any

import click

from auditor import __version__, settings
from auditor.errors import AuditorError

HELP_WIDTH = 120

# command name -> (module in auditor.cli, attribute): a command's module (and what it imports) is loaded
# only when that command runs, so `auditor scan` does not pay for `fetch`, `ci` or `approvals`.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "command"), "rules": ("rules_cmd", "command"), "demo": ("demo", "command"),
    "ci": ("ci", "command"), "pr-comment": ("ci", "comment_command"), "waivers": ("waivers", "command"),
    "report": ("report", "command"), "verify-evidence": ("evidence", "command"), "fetch": ("fetch", "command"),
    "lock": ("lock", "command"), "verify": ("lock", "verify_command"), "approve": ("approve", "command"),
    "approvals": ("approvals", "command"), "check": ("check", "command"), "batch": ("batch", "command"),
}


class _LazyGroup(click.Group):
    """Loads a command's module when it runs; lists every command with its whole first help line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        import importlib
        module, attribute = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(f"auditor.cli.{module}"), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.short_help or (cmd.help or "").strip().split("\n")[0]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows, col_max=20)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": HELP_WIDTH, "terminal_width": HELP_WIDTH},
             epilog="""\b
Examples:
  auditor scan ./my-model                  # a summary on the terminal, JSON when piped
  auditor scan ./my-model -o report.pdf    # the format follows the extension
  auditor ci                               # the pull-request check (see `auditor ci --help`)

\b
Exit codes: 0 pass (or warn), 1 the policy failed, 2 an error (one line on stderr);
`auditor ci` also 3 for a warning.""")
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit open-weight models before they reach production."""


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
        code = cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except AuditorError as exc:
        click.echo(f"auditor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("auditor: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("auditor: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 2
        if settings.current().debug:
            raise
        click.echo(f"auditor: internal error: {type(exc).__name__}: {exc} (AUDITOR_DEBUG=1 for details)", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
