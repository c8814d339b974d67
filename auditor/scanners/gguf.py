"""GGUF: the bounded header reader (auditor.parsers.gguf) turned into findings with byte offsets, the
embedded chat templates checked, general.* metadata published."""
from __future__ import annotations

import functools
import mmap
from collections.abc import Iterator
from typing import Any

from auditor import rules
from auditor.facts import GgufFacts
from auditor.model import Finding
from auditor.scanners import ScanContext
from auditor.scanners._formats_util import clip, metadata_findings, unique_files
from auditor.scanners.templates import check_template

NAME = "gguf"


@functools.cache
def _spec() -> dict[str, Any]:
    return rules.load("weight-formats.yaml")["gguf"]


def scan(ctx: ScanContext) -> Iterator[Finding]:
    files = unique_files(ctx.files_of("gguf"), ctx.files_named(".gguf"))
    yield from ctx.per_file(files, lambda rec: _scan_file(ctx, rec), NAME)


def _scan_file(ctx: ScanContext, rec: Any) -> Iterator[Finding]:
    from auditor.parsers.gguf import GgufError, read, tensor_problems  # for GGUF files only

    def finding(rule: str, location: str, evidence: str) -> Finding:
        return rules.finding(rule, file=rec.path, location=location, evidence=evidence, scanner=NAME)

    if rec.size == 0:
        yield finding("GGUF-UNPARSEABLE", "byte 0", "empty file")
        return
    try:
        with open(ctx.fspath(rec), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            g = read(buf, min(rec.size, len(buf)), _spec())
    except GgufError as p:
        yield finding(f"GGUF-{p.kind}", p.location, p.evidence)
        return
    except (OSError, ValueError) as exc:
        yield finding("GGUF-UNPARSEABLE", "", f"cannot read: {exc}")
        return
    if g.duplicates:
        yield finding("GGUF-DUPLICATE-KEY", "metadata", f"keys repeated: {sorted(set(g.duplicates))[:20]}")
    for kind, location, evidence in tensor_problems(g, rec.size, _spec()):
        yield finding(f"GGUF-{kind}", location, evidence)
    template = g.metadata.get("tokenizer.chat_template")
    if isinstance(template, str):
        yield from check_template(template, file=rec.path, where="metadata tokenizer.chat_template", scanner=NAME)
    for key, value in g.metadata.items():
        if key.startswith("tokenizer.chat_template.") and isinstance(value, str):
            yield from check_template(value, file=rec.path, where=f"metadata {key}", scanner=NAME)
    general = {k: v for k, v in g.metadata.items() if k.startswith("general.")}
    yield from metadata_findings("GGUF", rec.path, general, NAME, tuple(_spec()["url_keys"]))
    facts: dict[str, Any] = {k: clip(v) for k, v in general.items()}
    for key in _spec()["fact_keys"]:
        if key in g.metadata:
            facts[key] = clip(g.metadata[key])
    facts.update({"version": g.version, "tensors": len(g.tensors), "metadata_keys": len(g.metadata),
                  "tokenizer.chat_template": isinstance(template, str)})
    ctx.facts.add_file(GgufFacts, rec.path, facts)
