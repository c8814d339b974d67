"""The `auditor` command: thin wrappers that parse options, call the API, render and exit.

Exit codes: 0 pass (or warn), 1 policy fail, 2 error. Errors are one line on stderr, no traceback
(set AUDITOR_DEBUG=1 to see one).
"""
from __future__ import annotations

import sys

import click

from auditor import __version__, settings
from auditor.errors import AuditorError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit open-weight models before they reach production."""


def _register() -> None:
    from auditor.cli import ci, demo, evidence, fetch, lock, report, rules_cmd, scan, waivers
    for module in (scan, rules_cmd, demo, ci, waivers, report, evidence, fetch, lock):
        cli.add_command(module.command)
    cli.add_command(lock.verify_command)
    cli.add_command(ci.comment_command)


_register()


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
