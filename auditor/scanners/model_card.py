"""What the model says it is: config.json's architecture fields, the card's front matter (task, datasets,
languages) and the card's own "Limitations" section. No findings: these are facts for the ML-BOM's
modelCard (CycloneDX modelParameters and considerations). Bounded reads, nothing executed."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from auditor.facts import ModelCardFacts
from auditor.model import Finding
from auditor.parsers.lineage import front_matter
from auditor.scanners import ScanContext

NAME = "model_card"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_LIMITATIONS_CHARS = 4000
CONFIG_KEYS = ("architectures", "model_type", "torch_dtype", "hidden_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings",
               "num_experts", "num_local_experts", "quantization_config")
CARD_KEYS = ("pipeline_tag", "library_name", "language", "datasets", "tags", "base_model", "license",
             "license_name", "model_name")
_LIMITATIONS_HEADING = re.compile(r"^#{1,4}\s*(?:[^\n]*\b(?:limitations?|risks and limitations|bias)\b[^\n]*)$",
                                  re.IGNORECASE | re.MULTILINE)


def _config(ctx: ScanContext) -> dict[str, Any]:
    rec = next((r for r in ctx.files if r.path == "config.json" and not r.error), None)
    if rec is None or rec.size > MAX_CONFIG_BYTES:
        return {}
    text, _ = ctx.read_text(rec)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return {k: data[k] for k in CONFIG_KEYS if isinstance(data, dict) and k in data}


def limitations(body: str) -> str:
    """The text under the card's first heading about limitations, up to the next heading."""
    match = _LIMITATIONS_HEADING.search(body)
    if not match:
        return ""
    rest = body[match.end():]
    following = re.search(r"^#{1,4}\s", rest, re.MULTILINE)
    section = rest[:following.start()] if following else rest
    return " ".join(section.split())[:MAX_LIMITATIONS_CHARS]


def scan(ctx: ScanContext) -> Iterator[Finding]:
    card_rec = next((r for r in ctx.files if r.path.lower() == "readme.md" and not r.error), None)
    card: dict[str, Any] = {}
    own_limitations = ""
    if card_rec is not None:
        text, _ = ctx.read_text(card_rec)
        meta = front_matter(text)
        card = {k: meta[k] for k in CARD_KEYS if k in meta}
        own_limitations = limitations(text)
    config = _config(ctx)
    if card or config or own_limitations:
        ctx.facts.publish(ModelCardFacts(data={"config": config, "card": card, "limitations": own_limitations}))
    return iter(())
