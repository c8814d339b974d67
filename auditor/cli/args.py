"""The command line's one interface: a `Command` (or a `Group` of them) over the standard library's argparse.

A command module builds `Command(name, run, arguments)`: `arguments(parser)` adds its flags, and `run` is
called with the parsed values as keyword arguments (a repeated flag's values as a tuple) and returns the
exit code. argparse, not click: click's import is ~25 ms of a 200-file scan's ~200 ms (bench/RESULTS.md).
A usage error is argparse's: the usage line, one error line, exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from auditor.record import record

HELP_WIDTH = 120


@record(frozen=True)
class Command:
    name: str
    run: Callable[..., int]                           # its docstring is the command's help
    arguments: Callable[[argparse.ArgumentParser], None]
    summary: str = ""                                 # the line in `auditor --help` (default: run's first line)
    epilog: str = ""                                  # printed as written, after the options

    def describe(self) -> str:
        return self.summary or _doc(self.run).split("\n")[0]


@record(frozen=True)
class Group:
    """Commands under one name (`auditor approvals list`)."""
    name: str
    summary: str
    commands: tuple[Command, ...]

    def describe(self) -> str:
        return self.summary


def invoke(entry: Command | Group, argv: Sequence[str], prog: str) -> int:
    """Parse argv for `entry` and run it; argparse exits 2 on a usage error and 0 after --help."""
    if isinstance(entry, Group):
        return _invoke_group(entry, list(argv), prog)
    parser = new_parser(prog, _doc(entry.run), entry.epilog)
    entry.arguments(parser)
    values = vars(parser.parse_intermixed_args(argv))
    return entry.run(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.items()})


def _invoke_group(group: Group, argv: list[str], prog: str) -> int:
    by_name = {c.name: c for c in group.commands}
    parser = new_parser(f"{prog} COMMAND", group.summary, listing("Commands", group.commands))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    if argv[0] not in by_name:
        parser.error(f"no such command {argv[0]!r} (one of: {', '.join(by_name)})")
    return invoke(by_name[argv[0]], argv[1:], f"{prog} {argv[0]}")


def new_parser(prog: str, description: str, epilog: str = "", usage: str | None = None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, usage=usage, description=description, epilog=epilog or None,
                                   formatter_class=_Formatter, allow_abbrev=False)


def listing(title: str, entries: Sequence[Command | Group]) -> str:
    """A help section of names and their whole first help line."""
    width = max((len(e.name) for e in entries), default=0) + 2
    return f"{title}:\n" + "\n".join(f"  {e.name:<{width}}{e.describe()}" for e in entries)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (their examples and exit-code tables keep their lines)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=HELP_WIDTH, max_help_position=34)


def _doc(func: Callable[..., Any]) -> str:
    return cleandoc(func.__doc__ or "")


def cleandoc(doc: str) -> str:
    """`inspect.cleandoc`'s result (tests/test_cli.py compares them), without importing inspect: that import
    (ast, dis, tokenize) was ~20 M instructions of every command's start, for a text only --help shows."""
    lines = doc.expandtabs().split("\n")
    margin = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.lstrip()), default=0)
    lines = [lines[0].lstrip(), *(line[margin:] for line in lines[1:])]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def echo(message: str = "", *, err: bool = False) -> None:
    """A line on stdout (stderr with err=True), flushed: progress and results interleave in order."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


# argument types: a value that cannot be right fails at parse time, with argparse's usage line

def file_path(value: str) -> str:
    """A path that, when it exists, is not a folder."""
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is a folder, not a file")
    return value


def existing_file(value: str) -> str:
    if not os.path.exists(value):
        raise argparse.ArgumentTypeError(f"{value!r} does not exist")
    return file_path(value)


def folder_path(value: str) -> str:
    """A path that, when it exists, is a folder."""
    if os.path.exists(value) and not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is a file, not a folder")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < low or (high is not None and number > high):
            span = f"{low}-{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{number} is not in the range {span}")
        return number
    parse.__name__ = "integer"
    return parse
