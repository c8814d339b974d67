"""Helpers shared by the weight-format scanners: strict bounded JSON, metadata text checks, facts."""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from auditor import rules


class FormatProblem(Exception):
    """A file that cannot be verified: `rule` names the finding, `location` where it broke."""

    def __init__(self, rule: str, location: str, evidence: str) -> None:
        super().__init__(evidence)
        self.rule, self.location, self.evidence = rule, location, evidence


def strict_json(raw: bytes | str, max_depth: int, *, what: str = "JSON") -> tuple[Any, list[str]]:
    """Parse JSON, returning (value, duplicate keys). Raises ValueError (bad JSON) or RecursionError-safe
    `DepthError` when nesting goes past max_depth."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    if json_depth(raw, max_depth) > max_depth:
        raise DepthError(f"{what} nested deeper than {max_depth}")
    try:
        return json.loads(raw, object_pairs_hook=pairs), duplicates
    except RecursionError:
        raise DepthError(f"{what} nested too deeply") from None


class DepthError(ValueError):
    pass


_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def json_depth(raw: bytes | str, stop_at: int) -> int:
    """Bracket nesting of a JSON text (strings skipped); stops counting past `stop_at`."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    depth = deepest = 0
    for match in _BRACKETS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    return deepest
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


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
