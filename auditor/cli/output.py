"""Shared CLI pieces: choosing the format, the progress bar, rendering a result, writing it atomically."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor import atomic, reports
from auditor.errors import AuditorError
from auditor.inventory import Progress
from auditor.model import AuditResult

BINARY_FORMATS = {"pdf"}
# Longest suffix first: report.cdx.json is CycloneDX, report.json is JSON.
_SUFFIXES = ((".cdx.json", "cyclonedx"), (".bom.json", "cyclonedx"), (".sarif.json", "sarif"), (".sarif", "sarif"),
             (".json", "json"), (".md", "markdown"), (".markdown", "markdown"), (".html", "html"), (".htm", "html"),
             (".pdf", "pdf"), (".txt", "summary"))


def format_from_path(path: str) -> str | None:
    lower = path.lower()
    return next((fmt for suffix, fmt in _SUFFIXES if lower.endswith(suffix)), None)


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def choose_format(fmt: str | None, output: str, *, several: bool = False) -> str:
    """--format, else -o's extension, else the human summary on a terminal and JSON when piped."""
    to_stdout = output in ("", "-")
    chosen = fmt or (None if to_stdout or several else format_from_path(output))
    if chosen is None:
        chosen = "summary" if to_stdout and _stdout_is_tty() else "json"
    if chosen in BINARY_FORMATS and to_stdout and _stdout_is_tty():
        raise AuditorError(f"refusing to write {chosen} (binary) to the terminal; give -o FILE or pipe it")
    if several and to_stdout and chosen not in ("json", "summary"):
        raise AuditorError(f"several targets in {chosen}: give -o FOLDER (one report per model)")
    return chosen


def render(result: AuditResult, fmt: str, *, sarif_root: str | None = None,
           sarif_threshold: str = "low") -> atomic.Data:
    """The report, in pieces when the format streams (`iter_render`): emit() writes them as they come."""
    if fmt == "summary":
        return summary(result) + "\n"
    if fmt == "sarif":
        from auditor.model import Severity
        from auditor.reports import sarif
        return sarif.render(result, root=sarif_root or None, threshold=Severity.parse(sarif_threshold))
    module = reports.get(fmt)
    streamed = getattr(module, "iter_render", None)
    return streamed(result) if streamed else module.render(result)


def emit_results(results: list[AuditResult], fmt: str, output: str, **options: Any) -> list[str]:
    """Write each result; returns the file written for each ("" for stdout)."""
    if len(results) == 1:
        emit(render(results[0], fmt, **options), output)
        return ["" if output in ("", "-") else output]
    if output in ("", "-"):
        if fmt == "json":
            from auditor.reports import json_report
            emit("[\n" + ",\n".join(json_report.render(r).rstrip("\n") for r in results) + "\n]\n", output)
        else:
            emit("\n\n".join(summary(r) for r in results) + "\n", output)
        return ["" for _ in results]
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise AuditorError(f"--output {output}: several targets need a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    used: set[str] = set()
    extension = ".txt" if fmt == "summary" else reports.get(fmt).EXTENSION
    for r in results:
        from auditor.reports import view
        stem = view.model_name(r).replace("/", "__") or "model"
        name = stem
        while name in used:
            name = f"{stem}-{len(used)}"
        used.add(name)
        path = str(folder / f"{name}{extension}")
        emit(render(r, fmt, **options), path)
        written.append(path)
    return written


def emit(data: atomic.Data, output: str | None) -> None:
    """Write to a file atomically (pieces stream into the temp file), or to stdout for None / '-' (UTF-8
    whatever the console's encoding; whole, so a render that fails midway prints nothing)."""
    if output in (None, "", "-"):
        if not isinstance(data, (str, bytes)):
            pieces = list(data)
            data = b"".join(pieces) if pieces and isinstance(pieces[0], bytes) else "".join(pieces)  # type: ignore[arg-type]
        payload = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
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
    """A few lines for the terminal: verdict, counts, the top issues (repeats grouped), the claims."""
    from auditor.reports import view
    v = result.verdict
    counts = view.counts_line(result)
    lines = [f"{view.clean(result.target, keep_newlines=False)}: {v.decision.upper()} "
             f"(policy {view.clean(v.policy)}; {len(result.files)} files; {counts})"]
    issues = view.issues(view.active(result))
    for issue in issues[:10]:
        f = issue.first
        where = view.clean(view.where(f), 160, keep_newlines=False)
        more = f" (+{len(issue.findings) - 1} more places)" if len(issue.findings) > 1 else ""
        lines.append(f"  [{f.severity.label}] {f.rule} {where}{more}: {view.clean(f.title, 200, keep_newlines=False)}")
    if len(issues) > 10:
        lines.append(f"  ... and {len(issues) - 10} more")
    for c in result.claims:
        lines.append(f"  claim {c.id}: {c.status.value}")
    return "\n".join(lines)
