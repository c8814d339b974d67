"""Following the lineage (base_model, adapter base, GGUF base) through the same endpoint.

Each ancestor's card and license files are downloaded at its resolved commit and checked against its
own listing before anything is read from them; a file that does not match is left out and noted.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor.model import Ancestor
from auditor.parsers import licensetext, lineage
from auditor.record import field, record
from auditor.sources.hub import _files
from auditor.sources.hub._http import config, explain, network_errors
from auditor.sources.hub._retry import Budget


@record
class Walk:
    api: Any
    endpoint: str
    token: str | bool
    cache: Path
    budget: Budget
    notes: list[str] = field(default_factory=list)      # files whose bytes failed verification


def follow(walk: Walk, child_id: str, refs: list[lineage.BaseRef]) -> Iterator[Ancestor]:
    """Breadth-first up the base_model chain to the roots; depth-limited, cycles detected."""
    cfg = config()
    max_depth, max_parents = int(cfg["lineage_max_depth"]), int(cfg["lineage_max_parents"])
    max_total = int(cfg["lineage_max_ancestors"])
    resolved = 0
    queue: list[tuple[lineage.BaseRef, str, int, tuple[str, ...]]] = [
        (ref, child_id, 1, (child_id.lower(),)) for ref in refs[:max_parents]]
    seen: set[str] = set()
    while queue:
        ref, parent, depth, chain = queue.pop(0)
        key = ref.repo_id.lower()
        error = _stop_reason(ref, key, chain, depth, max_depth, resolved >= max_total, max_total)
        if error:
            yield Ancestor(ref.repo_id, ref.relation, depth, parent, error=error)
            continue
        if key in seen:
            continue
        seen.add(key)
        resolved += 1
        ancestor, parents = _resolve(walk, ref, parent, depth)
        yield ancestor
        queue.extend((p, ref.repo_id, depth + 1, (*chain, key)) for p in parents[:max_parents])


def _stop_reason(ref: lineage.BaseRef, key: str, chain: tuple[str, ...], depth: int, max_depth: int,
                 full: bool, max_total: int) -> str:
    if not ref.valid:
        return f"not a Hub repo id (from {ref.source})"
    if key in chain:
        return "cycle: " + " -> ".join((*chain, key))
    if depth > max_depth:
        return f"depth limit {max_depth} reached"
    if full:
        return f"depth limit: more than {max_total} ancestors in the lineage"
    return ""


def _resolve(walk: Walk, ref: lineage.BaseRef, parent: str, depth: int) -> tuple[Ancestor, list[lineage.BaseRef]]:
    try:
        info = walk.api.model_info(ref.repo_id, revision="main", timeout=walk.budget.timeout)
        commit = str(info.sha or "")
        texts = verified_texts(walk, ref.repo_id, commit)
    except network_errors() as exc:
        reason = str(explain(exc, f"{ref.repo_id} on {walk.endpoint}", walk.budget))
        return Ancestor(ref.repo_id, ref.relation, depth, parent, error=reason), []
    card = lineage.front_matter(texts.pop("README.md", ""))
    ancestor = Ancestor(ref.repo_id, ref.relation, depth, parent, commit=commit, card=card, license_texts=texts)
    return ancestor, lineage.card_refs(card, source=f"{ref.repo_id}/README.md")


def verified_texts(walk: Walk, repo_id: str, commit: str) -> dict[str, str]:
    """README.md and the license files at the repo root, only those whose bytes match the listing
    (downloaded like the model's files: _download.py places only matching bytes as blobs)."""
    cfg = config()
    limit = int(cfg["license_file_max_bytes"])
    wanted = {name: _files.publisher_hash(entry) for name, entry in _files.tree(walk.api, repo_id, commit,
                                                                                 walk.budget).items()
              if "/" not in name and (name == "README.md" or licensetext.file_role(name))
              and (entry.size or 0) <= limit}
    texts: dict[str, str] = {}
    if not wanted:
        return texts
    root, _mismatched, _hashed = _files.download(repo_id, commit, sorted(wanted), wanted, walk.endpoint, walk.token,
                                        walk.cache, walk.budget)
    for name in sorted(wanted):
        local = root / name
        if not _files.matches(local, wanted[name]):
            walk.notes.append(f"{repo_id}@{commit} {name}: the bytes served do not match the listing's hash; "
                              "not used for lineage or license facts (evicted from the cache)")
            _files.evict(root, [name])
            continue
        with open(local, "rb") as fh:
            texts[name] = fh.read(limit).decode("utf-8", "replace")
    return texts
