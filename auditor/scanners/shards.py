"""Sharded checkpoints (`*.index.json`): every referenced shard present and inside the folder, no stray
shard, each tensor stored once, and the index agreeing with the shards' own headers."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners import safetensors as st
from auditor.scanners._formats_util import DepthError, FormatProblem, strict_json

NAME = "shards"

_UNSAFE_NAME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|/|\\)|(?:^|[/\\])\.\.(?:[/\\]|$)|\\")


def scan(ctx: ScanContext) -> Iterator[Finding]:
    present = {rec.path: rec for rec in ctx.files if not rec.error}
    yield from ctx.per_file(ctx.files_named(".index.json"), lambda rec: _scan_index(ctx, rec, present), NAME)


def _scan_index(ctx: ScanContext, rec: Any, present: dict[str, Any]) -> Iterator[Finding]:
    def finding(rule: str, location: str, evidence: str) -> Finding:
        return rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME)

    text, truncated = ctx.read_text(rec)
    if truncated:
        yield finding("SHARDS-UNPARSEABLE", "", "index larger than the text limit")
        return
    try:
        index, duplicates = strict_json(text, ctx.options.limits.max_json_depth, what="index")
    except (DepthError, ValueError) as exc:
        yield finding("SHARDS-UNPARSEABLE", "", str(exc))
        return
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        yield finding("SHARDS-UNPARSEABLE", "weight_map", "no weight_map object of tensor -> shard file names")
        return
    if duplicates:
        yield finding("SHARDS-DUPLICATE-TENSOR", "weight_map",
                      f"tensor names repeated in the index: {', '.join(sorted(set(duplicates))[:20])}")
    folder = posixpath.dirname(rec.path)
    shards: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        shards.setdefault(shard, []).append(tensor)
    usable: dict[str, str] = {}   # shard name -> inventory path
    yield from _resolve_shards(ctx, shards, folder, present, usable, finding)
    yield from _stray_files(rec, folder, set(usable.values()), present)
    total = index.get("metadata", {}).get("total_size") if isinstance(index.get("metadata"), dict) else None
    if rec.path.endswith(".safetensors.index.json"):
        yield from _check_safetensors(ctx, usable, shards, weight_map, total, present, finding)
    elif isinstance(total, int) and usable and len(usable) == len(shards):
        on_disk = sum(present[p].size for p in usable.values())
        if total > on_disk:
            yield finding("SHARDS-SIZE-MISMATCH", "metadata.total_size",
                          f"total_size {total} > {on_disk} bytes of shard files")


def _resolve_shards(ctx: ScanContext, shards: dict[str, list[str]], folder: str, present: dict[str, Any],
                    usable: dict[str, str], finding: Any) -> Iterator[Finding]:
    """Each shard the index names, as a path in the snapshot (into `usable`), or a finding."""
    not_downloaded = {r.get("path") for r in ctx.snapshot.facts.get("remote_files", []) if not r.get("downloaded")}
    for shard in sorted(shards):
        if _UNSAFE_NAME.search(shard):
            yield finding("SHARDS-PATH-ESCAPE", f"weight_map {shards[shard][0]!r}",
                          f"shard {shard!r} is not a plain file next to the index")
            continue
        rel = posixpath.normpath(posixpath.join(folder, shard)) if folder else posixpath.normpath(shard)
        if rel not in present and rel in not_downloaded:
            continue        # --metadata-only: listed by the publisher, not fetched (one HUB-METADATA-ONLY lists them)
        if rel not in present:
            yield finding("SHARDS-MISSING-SHARD", f"weight_map {shards[shard][0]!r}",
                          f"{shard} (needed by {len(shards[shard])} tensors) is not in the snapshot")
            continue
        usable[shard] = rel


def _stray_files(rec: Any, folder: str, referenced: set[str], present: dict[str, Any]) -> Iterator[Finding]:
    """Shard-like files of the same kind and prefix that the index does not reference."""
    base = posixpath.basename(rec.path)[: -len(".index.json")]       # model.safetensors, pytorch_model.bin
    stem, dot, kind = base.rpartition(".")
    if not dot:
        return
    for path in sorted(present):
        if posixpath.dirname(path) != folder or path in referenced:
            continue
        name = posixpath.basename(path)
        index_name = posixpath.basename(rec.path)
        if name == base:
            yield rules.finding("SHARDS-UNREFERENCED", file=path, location=f"next to {index_name}", scanner=NAME,
                                evidence=f"{name} sits next to {index_name}; loaders prefer it over the shards the index lists")
        elif name.startswith(stem + "-") and name.endswith("." + kind):
            yield rules.finding("SHARDS-UNREFERENCED", file=path, location=f"next to {index_name}", scanner=NAME,
                                evidence=f"{name} looks like a shard but no tensor in {index_name} maps to it")


def _check_safetensors(ctx: ScanContext, usable: dict[str, str], shards: dict[str, list[str]],
                       weight_map: dict[str, str], total: Any, present: dict[str, Any], finding: Any) -> Iterator[Finding]:
    holders: dict[str, list[str]] = {}
    tensor_bytes: dict[str, int] = {}
    for shard, rel in usable.items():
        try:
            header = st.read_header(str(ctx.root / rel), present[rel].size, ctx.options.limits)
        except (FormatProblem, OSError):
            return   # the safetensors scanner reports the broken shard; nothing here can be compared
        names = {t.name for t in header.tensors}
        for t in header.tensors:
            holders.setdefault(t.name, []).append(shard)
            tensor_bytes.setdefault(t.name, max(0, t.end - t.begin))
        missing = sorted(set(shards[shard]) - names)
        if missing:
            yield finding("SHARDS-INDEX-MISMATCH", f"weight_map {missing[0]!r}",
                          f"{len(missing)} tensors mapped to {shard} are not in it: {missing[:10]}")
        extra = sorted(n for n in names if weight_map.get(n) != shard)
        if extra:
            yield finding("SHARDS-INDEX-MISMATCH", shard,
                          f"{shard} holds {len(extra)} tensors the index maps elsewhere or not at all: {extra[:10]}")
    for tensor, where in sorted(holders.items()):
        if len(where) > 1:
            yield finding("SHARDS-DUPLICATE-TENSOR", f"tensor {tensor!r}", f"stored in {', '.join(sorted(where))}")
    if isinstance(total, int) and len(usable) == len(shards):
        actual = sum(tensor_bytes.values())
        if actual != total:
            yield finding("SHARDS-SIZE-MISMATCH", "metadata.total_size",
                          f"total_size {total} but the shards hold {actual} tensor bytes")
