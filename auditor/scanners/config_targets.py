"""Config-driven instantiation: Hydra/NeMo `_target_` keys in YAML/JSON configs (and the model_config.yaml
inside `.nemo` archives) name callables that libraries import and call on load."""
from __future__ import annotations

import functools
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import yaml

from auditor import rules
from auditor.facts import ConfigTargetFacts
from auditor.model import Finding
from auditor.parsers import yamlsafe
from auditor.scanners import ScanContext

NAME = "config_targets"


@functools.cache
def _data() -> dict[str, Any]:
    return rules.load("config-targets.yaml")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    keys = tuple(_data()["keys"])
    for rec in ctx.files_named(".yaml", ".yml", ".json"):
        if rec.size > _data()["max_config_bytes"]:
            continue
        text, _ = ctx.read_text(rec)
        if not any(k in text for k in keys):
            continue
        yield from _scan_text(ctx, rec.path, "", text, is_json=rec.path.lower().endswith(".json"))
    for rec in ctx.files_named(".nemo"):
        yield from _scan_nemo(ctx, rec)


def _scan_text(ctx: ScanContext, file: str, member: str, text: str, *, is_json: bool) -> Iterator[Finding]:
    prefix = f"{member}: " if member else ""
    try:
        config = json.loads(text) if is_json else yamlsafe.load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=file, location=member,
                            evidence=f"{type(exc).__name__}: {str(exc)[:300]}", scanner=NAME)
        return
    targets: list[tuple[str, str]] = []
    try:
        _collect(config, targets)
    except OverflowError as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=file, location=member, evidence=str(exc), scanner=NAME)
        return
    data = _data()
    for path, target in targets:
        location = f"{prefix}{path}"
        if _matches(target, data["dangerous_prefixes"]):
            yield rules.finding("CONFIG-TARGET-DANGEROUS", file=file, location=location, evidence=target, scanner=NAME)
        elif not _matches(target, data["known_prefixes"]):
            yield rules.finding("CONFIG-TARGET-UNKNOWN", file=file, location=location, evidence=target, scanner=NAME)
    if targets:
        ctx.facts.add_file(ConfigTargetFacts, file + (f"!{member}" if member else ""), sorted({t for _, t in targets})[:200])


def _matches(target: str, prefixes: list[str]) -> bool:
    return any(target == p.rstrip(".") or target.startswith(p) for p in prefixes)


def _collect(config: Any, out: list[tuple[str, str]]) -> None:
    keys = set(_data()["keys"])
    limit = _data()["max_nodes"]
    stack: list[tuple[Any, str]] = [(config, "$")]
    visited: set[int] = set()
    count = 0
    while stack:
        node, path = stack.pop()
        count += 1
        if count > limit:
            raise OverflowError(f"more than {limit} config nodes (alias bomb?)")
        if isinstance(node, (dict, list)):
            if id(node) in visited:      # YAML aliases share objects: walk each once
                continue
            visited.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and isinstance(value, str):
                    out.append((f"{path}.{key}", value.strip()))
                elif isinstance(value, (dict, list)):
                    stack.append((value, f"{path}.{key}"))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node) if isinstance(item, (dict, list)))


def _scan_nemo(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    limit = _data()["max_nemo_member_bytes"]
    try:
        with tarfile.open(ctx.path(rec), "r:*") as tar:
            for count, member in enumerate(tar):
                if count > ctx.options.limits.max_archive_members:
                    yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=rec.path, evidence="too many members",
                                        scanner=NAME)
                    return
                if not member.isfile() or not member.name.lower().endswith((".yaml", ".yml", ".json")):
                    continue
                if member.size > limit:
                    yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=rec.path, location=member.name,
                                        evidence=f"{member.size} bytes > {limit}", scanner=NAME)
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace").read(limit)
                yield from _scan_text(ctx, rec.path, member.name, text, is_json=member.name.lower().endswith(".json"))
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield rules.finding("CONFIG-TARGET-UNPARSEABLE", file=rec.path, evidence=f"not a readable .nemo tar: {exc}",
                            scanner=NAME)
