"""Shared CLI pieces: the progress bar, rendering a result, writing it atomically."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from auditor import atomic, reports
from auditor.errors import AuditorError
from auditor.inventory import Progress
from auditor.model import AuditResult


def render(result: AuditResult, fmt: str) -> str | bytes:
    return reports.get(fmt).render(result)


def emit(data: str | bytes, output: str | None) -> None:
    """Write to a file atomically, or to stdout for None / '-'."""
    if output in (None, "-"):
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            click.echo(data, nl=False)
        return
    path = Path(output)
    if path.is_dir():
        raise AuditorError(f"--output {output} is a folder; give a file name")
    if not path.parent.is_dir():
        raise AuditorError(f"--output {output}: folder {path.parent} does not exist")
    try:
        atomic.write(path, data)
    except OSError as exc:
        raise AuditorError(f"cannot write {output}: {exc.strerror or exc}") from None


@contextmanager
def hashing_progress(quiet: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr while hashing; nothing when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress("hashing", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("hash", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        yield update


@contextmanager
def fetch_progress(quiet: bool) -> Iterator[tuple[Progress | None, Any]]:
    """One display on stderr for a Hub fetch: each file's download and all of them (bytes, total, rate),
    then the hashing. Yields (hashing callback, download callback); (None, None) when quiet or not a
    terminal."""
    if quiet or not sys.stderr.isatty():
        yield None, None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  transient=True, console=_stderr_console()) as bar:
        overall = bar.add_task("download", total=None, visible=False)
        hashing = bar.add_task("hashing", total=None, visible=False)
        files: dict[str, Any] = {}

        def on_download(path: str, done: int, size: int, all_done: int, total: int) -> None:
            bar.update(overall, completed=all_done, total=total, visible=True)
            if path not in files:
                files[path] = bar.add_task(f"  {path[-48:]}", total=size or None)
            bar.update(files[path], completed=done)
            if size and done >= size:
                bar.remove_task(files.pop(path))

        def on_hash(done: int, total: int) -> None:
            bar.update(hashing, completed=done, total=total, visible=True)
        yield on_hash, on_download


def _stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console
    return Console(stderr=True)


def summary(result: AuditResult) -> str:
    """A few lines for the terminal: verdict, counts, the top findings."""
    v = result.verdict
    counts = ", ".join(f"{n} {s}" for s, n in v.counts.items() if n) or "no findings"
    lines = [f"{result.target}: {v.decision.upper()} (policy {v.policy}; {len(result.files)} files; {counts})"]
    for f in [f for f in result.findings if not f.waived][:10]:
        where = f"{f.file}" + (f" @ {f.location}" if f.location else "")
        lines.append(f"  [{f.severity.label}] {f.rule} {where}: {f.title}")
    hidden = len([f for f in result.findings if not f.waived]) - 10
    if hidden > 0:
        lines.append(f"  ... and {hidden} more")
    for c in result.claims:
        lines.append(f"  claim {c.id}: {c.status.value}")
    return "\n".join(lines)
