"""A model card (README.md): its YAML front matter and its body text, bounded; and the model's kind.

Pure reading of untrusted text. `parse` is strict (a broken front matter is an error the caller
reports); `front_matter` is lenient ({} for anything it cannot read) for callers that only look
for references. The YAML goes through auditor.parsers.yamlsafe (alias-expansion bounded).
"""
from __future__ import annotations

import json
import re
from typing import Any

from auditor.parsers import yamlsafe
from auditor.record import field, record

MAX_FRONT_MATTER = 256 * 1024     # bytes of card YAML parsed
MAX_BODY_CHARS = 512 * 1024       # characters of card body kept
MAX_CONFIG_BYTES = 1024 * 1024

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LICENSE_HEADING = re.compile(r"licen[cs]|terms of use|使用条款|协议|许可|라이선스|라이센스", re.IGNORECASE)
_VISION_WORDS = re.compile(r"vision|visual|image|video|multimodal|multi-modal|llava|mllama|vl\b|_vl|-vl|vlm",
                           re.IGNORECASE)
_MULTIMODAL_TAGS = ("image-text-to-text", "visual-question-answering", "image-to-text", "video-text-to-text",
                    "any-to-any", "multimodal", "vision")


@record(frozen=True)
class Card:
    front: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    body_line: int = 1            # line number (1-based) of the body's first line in the file


def parse(text: str) -> Card:
    """Front matter and body. Raises ValueError (yamlsafe.YamlError among them) or RecursionError for a front
    matter that is not closed, too large, or not a mapping."""
    stripped = text.lstrip("\ufeff")
    if not stripped.startswith("---"):
        return Card({}, stripped[:MAX_BODY_CHARS], 1)
    end = stripped.find("\n---", 3)
    if end < 0:
        raise ValueError("front matter is not closed")
    block = stripped[3:end]
    if len(block.encode("utf-8", "replace")) > MAX_FRONT_MATTER:
        raise ValueError(f"front matter larger than {MAX_FRONT_MATTER} bytes")
    data = yamlsafe.load(block)
    if data is not None and not isinstance(data, dict):
        raise ValueError("front matter is not a mapping")
    rest = stripped[end + 4:]
    newline = rest.find("\n")
    body = rest[newline + 1:] if newline >= 0 else ""
    body_line = stripped[:end + 4].count("\n") + 2
    return Card(data or {}, body[:MAX_BODY_CHARS], body_line)


def front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a model card, {} when there is none or it cannot be read."""
    try:
        return parse(text).front
    except (ValueError, RecursionError):
        return {}


def license_sections(card: Card) -> list[tuple[int, str]]:
    """(first line number, text) of each body section whose heading is about the license."""
    sections: list[tuple[int, str]] = []
    current: list[str] | None = None
    level = 0
    start = 0
    for number, line in enumerate(card.body.splitlines(), start=card.body_line):
        heading = _HEADING.match(line)
        if heading and current is not None and len(heading.group(1)) <= level:
            sections.append((start, "\n".join(current)))
            current = None
        if heading and current is None and _LICENSE_HEADING.search(heading.group(2)):
            current, level, start = [], len(heading.group(1)), number + 1
            continue
        if current is not None:
            current.append(line)
    if current is not None:
        sections.append((start, "\n".join(current)))
    return sections


def read_config(raw: bytes) -> dict[str, Any]:
    """config.json as a dict ({} when it is not a JSON object or too large)."""
    if len(raw) > MAX_CONFIG_BYTES:
        return {}
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def model_kind(config: dict[str, Any], front: dict[str, Any]) -> str:
    """'multimodal', 'text', or '' when neither the config nor the card says."""
    if config:
        archs = config.get("architectures")
        names = [str(a) for a in archs] if isinstance(archs, list) else []
        names.append(str(config.get("model_type") or ""))
        if "vision_config" in config or "visual" in config or any(_VISION_WORDS.search(n) for n in names if n):
            return "multimodal"
    raw_tags = front.get("tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    words = [str(front.get("pipeline_tag") or "")] + [str(t) for t in tags]
    if any(w.lower() in _MULTIMODAL_TAGS for w in words):
        return "multimodal"
    if config and (config.get("architectures") or config.get("model_type")):
        return "text"
    if str(front.get("pipeline_tag") or "") in ("text-generation", "text2text-generation", "fill-mask"):
        return "text"
    return ""
