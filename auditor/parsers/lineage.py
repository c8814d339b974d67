"""Where a model says it comes from: base-model references in its card, adapter config and GGUF header.

Pure parsing of local files, no network: the hub source follows these references through the
endpoint; the provenance scanner reads them for any target (and, for a local folder, reports them
as unresolved rather than inventing a lineage). Only the files a caller names are read (`accepted`:
the inventory's records, or the hub source's hash-verified files): a README.md symlinked out of the
model folder, refused by the inventory, names no base model.
"""
from __future__ import annotations

import json
import mmap
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from auditor.parsers import repoid
from auditor.parsers.card import front_matter
from auditor.record import record

MAX_CARD_BYTES = 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
Reader = Callable[[str, int], bytes]   # (path in the folder, at most this many bytes) -> bytes; OSError


def file_reader(root: Path) -> Reader:
    """Reads the folder's files (a scanner passes its ScanContext.read_bytes: the bytes the survey hashed)."""
    def read(rel: str, limit: int) -> bytes:
        with open(root / rel, "rb") as fh:
            return fh.read(limit)
    return read


_HUB_URL = re.compile(r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/([\w.-]+/[\w.-]+)(?:/.*)?$")


@record(frozen=True)
class BaseRef:
    repo_id: str          # a Hub id, or the raw value when it is not one (then `valid` is False)
    relation: str         # finetune, quantized, adapter, merge, or "" when the card does not say
    source: str           # README.md, adapter_config.json, model.gguf ...
    valid: bool = True


def read_card(root: Path, accepted: Collection[str], read: Reader | None = None) -> dict[str, Any]:
    if "README.md" not in accepted:
        return {}
    try:
        raw = (read or file_reader(root))("README.md", MAX_CARD_BYTES)
    except OSError:   # gone, or not a file
        return {}
    return front_matter(raw.decode("utf-8", "replace"))


def _as_id(value: Any) -> tuple[str, bool]:
    text = str(value).strip()
    match = _HUB_URL.match(text)
    if match:
        text = match.group(1)
    return text, repoid.is_repo_id(text)


def card_refs(card: dict[str, Any], source: str = "README.md") -> list[BaseRef]:
    raw = card.get("base_model")
    values = raw if isinstance(raw, list) else [raw] if raw else []
    relation = str(card.get("base_model_relation") or "")
    if not relation and len(values) > 1:
        relation = "merge"
    refs = []
    for value in values:
        repo_id, valid = _as_id(value)
        if repo_id:
            refs.append(BaseRef(repo_id, relation, source, valid))
    return refs


def adapter_refs(root: Path, accepted: Collection[str], read: Reader | None = None) -> list[BaseRef]:
    if "adapter_config.json" not in accepted:
        return []
    try:
        data = json.loads((read or file_reader(root))("adapter_config.json", MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError):   # a broken or absurdly nested config names no base
        return []
    value = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    if not value:
        return []
    repo_id, valid = _as_id(value)
    return [BaseRef(repo_id, "adapter", "adapter_config.json", valid)]


def gguf_refs(root: Path, paths: list[str]) -> list[BaseRef]:
    """general.base_model.N.{organization,name,repo_url} from GGUF headers.

    Uses the bounded GGUF header reader (every count and length checked against the file size);
    gguf.GGUFReader trusts counts and is slow and memory-hungry on hostile headers.
    """
    refs: list[BaseRef] = []
    if not paths:
        return refs
    from auditor.parsers import gguf as gguf_header

    for rel in paths[:4]:
        try:
            with open(root / rel, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                metadata = gguf_header.read(buf, len(buf)).metadata
        except Exception:  # noqa: BLE001 - a broken header is the gguf scanner's finding, not lineage's
            continue
        refs += gguf_metadata_refs(metadata, rel)
    return refs


def gguf_metadata_refs(metadata: dict[str, Any], source: str) -> list[BaseRef]:
    """general.base_model.N.* of a GGUF header already read (a file, or a ranged read of a remote one)."""
    refs: list[BaseRef] = []
    count = metadata.get("general.base_model.count") or 0
    for i in range(min(count, 16) if isinstance(count, int) else 0):
        url = str(metadata.get(f"general.base_model.{i}.repo_url") or "")
        org = str(metadata.get(f"general.base_model.{i}.organization") or "")
        name = str(metadata.get(f"general.base_model.{i}.name") or "")
        repo_id, valid = _as_id(url) if url else _as_id(f"{org}/{name}".replace(" ", "-"))
        if repo_id.strip("/"):
            refs.append(BaseRef(repo_id, "quantized", source, valid))
    return refs


def local_refs(root: Path, accepted: Collection[str], read: Reader | None = None) -> list[BaseRef]:
    """Every base-model reference in the accepted files of a folder, card first, deduplicated by repo id."""
    refs = card_refs(read_card(root, accepted, read)) + adapter_refs(root, accepted, read)
    refs += gguf_refs(root, sorted(p for p in accepted if p.lower().endswith(".gguf")))
    return unique(refs)


def unique(refs: list[BaseRef]) -> list[BaseRef]:
    seen: set[str] = set()
    kept = []
    for ref in refs:
        if ref.repo_id.lower() not in seen:
            seen.add(ref.repo_id.lower())
            kept.append(ref)
    return kept
