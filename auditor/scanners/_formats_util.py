"""Helpers shared by the weight-format scanners: strict bounded JSON (from parsers.strictjson), metadata
text checks, facts."""
from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.parsers import strictjson
from auditor.parsers.strictjson import DepthError  # noqa: F401 - re-exported for the format scanners


class FormatProblem(Exception):
    """A file that cannot be verified: `rule` names the finding, `location` where it broke."""

    def __init__(self, rule: str, location: str, evidence: str) -> None:
        super().__init__(evidence)
        self.rule, self.location, self.evidence = rule, location, evidence


def strict_json(raw: bytes | str, max_depth: int, *, what: str = "JSON") -> tuple[Any, list[str]]:
    """Strict bounded JSON (auditor.parsers.strictjson): (value, repeated keys); DepthError past max_depth."""
    return strictjson.loads(raw, max_depth, what=what)


json_depth = strictjson.depth


@functools.cache
def seed_platform_processor() -> None:
    """Call before importing h5py (or modelscan, which imports it) in this process. Python computes
    platform.uname().processor by running `uname -p` through PATH, and h5py asks for it: a process spawn,
    and whatever `uname` PATH finds first. On Linux GNU `uname -p` prints "unknown", which platform
    reports as "": seed that value instead."""
    if sys.platform.startswith("linux"):
        import platform
        platform.uname().__dict__.setdefault("processor", "")


@functools.cache
def _patterns() -> tuple[list[re.Pattern[str]], re.Pattern[str]]:
    data = rules.load("weight-formats.yaml")
    return ([re.compile(p, re.M) for p in data["metadata_code_patterns"]], re.compile(data["url_pattern"]))


def code_like(text: str) -> str:
    """The first code-like fragment in free text, or ""."""
    for pattern in _patterns()[0]:
        match = pattern.search(text)
        if match:
            return match.group()
    return ""


def urls(text: str) -> list[str]:
    return _patterns()[1].findall(text)


def metadata_findings(prefix: str, file: str, values: dict[str, Any], scanner: str,
                      url_keys: tuple[str, ...] = ()) -> Iterator[Any]:
    """<prefix>-METADATA-CODE / -URL findings for string metadata values; keys ending in `url_keys` are
    URL fields by the format's spec and their URLs are facts, not findings."""
    for key, value in values.items():
        if not isinstance(value, str):
            continue
        fragment = code_like(value)
        if fragment:
            yield rules.finding(f"{prefix}-METADATA-CODE", file=file, location=f"metadata {key!r}",
                                evidence=f"{key}: ...{fragment}... in {value[:300]!r}", scanner=scanner)
        found = [] if key.endswith(url_keys) and url_keys else urls(value)
        if found:
            yield rules.finding(f"{prefix}-METADATA-URL", file=file, location=f"metadata {key!r}",
                                evidence=f"{key}: {', '.join(found[:5])}", scanner=scanner)


def clip(value: Any, limit: int = 4096) -> Any:
    """Facts stay small: long strings are cut."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"... [{len(value) - limit} more chars]"
    return value


def unique_files(*groups: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for group in groups:
        for rec in group:
            seen.setdefault(rec.path, rec)
    return [seen[p] for p in sorted(seen)]
