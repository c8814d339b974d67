"""Scripts, executables, notebooks and README run instructions that ship next to the weights."""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from auditor import rules
from auditor.model import FileRecord, Finding, Severity
from auditor.scanners import ScanContext

MAX_README_BYTES = 4 * 1024 * 1024
NAME = "code"


def scan_scripts(ctx: ScanContext, facts: dict[str, Any], scanner: str = NAME) -> Iterator[Finding]:
    return _scan_scripts(ctx, facts)


def _scan_scripts(ctx: ScanContext, facts: dict[str, Any]) -> Iterator[Finding]:
    data = rules.load("code-patterns.yaml")
    script_ext = tuple(data["script_extensions"])
    setup = set(data["setup_files"])
    binaries = set(data["binary_formats"])
    compiled = tuple(data.get("compiled_suffixes", ()))
    for rec in ctx.files:
        name = rec.path.rsplit("/", 1)[-1]
        lower = name.lower()
        if rec.format in binaries:
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-BINARY", file=rec.path, evidence=f"{rec.format} executable, {rec.size} bytes",
                                scanner=NAME)
        elif lower.endswith(compiled):
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-BINARY", file=rec.path, scanner=NAME,
                                evidence=f"compiled or packaged Python ({PurePosixPath(lower).suffix}), {rec.size} bytes")
        elif name in setup:
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-SETUP", file=rec.path, evidence=name, scanner=NAME)
        elif lower.endswith(script_ext) or (rec.format == "script" and not lower.endswith(".py")):
            facts["scripts"].append(rec.path)
            yield rules.finding("SCRIPT-SHELL", file=rec.path, evidence=_first_line(ctx, rec), scanner=NAME)
        elif lower.endswith(".ipynb"):
            yield rules.finding("SCRIPT-NOTEBOOK", file=rec.path, evidence=f"notebook, {rec.size} bytes",
                                scanner=NAME)
        elif lower.endswith((".md", ".rst", ".txt")) and lower.startswith("readme") and not rec.error:
            yield from _readme_instructions(ctx, rec, data)


def _first_line(ctx: ScanContext, rec: FileRecord) -> str:
    try:
        head = ctx.read_bytes(rec, 200).decode("utf-8", "replace")
    except OSError as exc:
        return exc.strerror or str(exc)
    return head.splitlines()[0] if head.strip() else "(empty)"


@functools.cache
def _readme_patterns() -> tuple[re.Pattern[str], list[str], str]:
    """(any run pattern, each run pattern, pipe to shell). Searched in MULTILINE mode over the whole text,
    the alternation matches wherever a pattern matches one line: a README it misses has no line to report.
    The others are compiled (through re's cache) only for a README that has a match."""
    data = rules.load("code-patterns.yaml")
    patterns = data["readme_run_patterns"]
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I | re.M), patterns, data["readme_pipe_to_shell"]


def _readme_instructions(ctx: ScanContext, rec: FileRecord, data: dict[str, Any]) -> Iterator[Finding]:
    try:
        text = ctx.read_bytes(rec, MAX_README_BYTES).decode("utf-8", "replace")
    except OSError:
        return
    anywhere, run, pipe = _readme_patterns()
    if not anywhere.search(text):
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > 2000:
            line = line[:2000]
        for pattern in run:
            match = re.search(pattern, line, re.I)
            if match:
                severity = Severity.MEDIUM if re.search(pipe, line, re.I) else None
                yield rules.finding("SCRIPT-README-RUN", file=rec.path, location=f"line {number}",
                                    evidence=line.strip()[:300], severity=severity, scanner=NAME)
                break
