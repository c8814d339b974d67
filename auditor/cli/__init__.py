"""The `auditor` command: thin wrappers that parse options, call the API, render and exit.

Exit codes: 0 pass (or warn), 1 policy fail, 2 error. Errors are one line on stderr, no traceback
(set AUDITOR_DEBUG=1 to see one).
"""
from __future__ import annotations

import sys

import click

from auditor import __version__, settings
from auditor.errors import AuditorError

# command name -> (module in auditor.cli, attribute): a command's module (and what it imports) is loaded
# only when that command runs, so `auditor scan` does not pay for `fetch`, `ci` or `approvals`.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "command"), "rules": ("rules_cmd", "command"), "demo": ("demo", "command"),
    "ci": ("ci", "command"), "waivers": ("waivers", "command"), "report": ("report", "command"),
    "verify-evidence": ("evidence", "command"), "fetch": ("fetch", "command"), "lock": ("lock", "command"),
    "approve": ("approve", "command"), "approvals": ("approvals", "command"), "check": ("check", "command"),
    "batch": ("batch", "command"), "verify": ("lock", "verify_command"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        import importlib
        module, attribute = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(f"auditor.cli.{module}"), attribute)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit open-weight models before they reach production."""


def main(argv: list[str] | None = None) -> None:
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
