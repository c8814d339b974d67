"""A model on the Hugging Face Hub or a mirror of it, fetched pinned and verified.

The revision is resolved to a commit SHA once, and everything (tree listing, files, the card) is read
at that SHA. The publisher's per-file hashes come from the tree listing (lfs.sha256, or the git blob
SHA-1), cross-checked against the model info's file list. Lineage and card facts are read only from
files whose bytes matched the listing (never from the API's cardData, which is only compared with
the verified README); under --metadata-only a GGUF's header is read with an HTTP Range request so
lineage that lives only there is kept (marked unverified). Every host contacted, redirects included,
is recorded (_http.py).

Cache: --cache-dir, else AUDITOR_CACHE (one folder per endpoint), else huggingface_hub's own cache
(HF_HUB_CACHE / HF_HOME) when the endpoint is the one that cache serves, else ~/.cache/auditor/hub.
Each repo folder records the endpoint its bytes came from; a folder from another endpoint is never
reused, so bytes from two endpoints never mix. Offline (--offline, HF_HUB_OFFLINE=1): only the cache.

Data (metadata-only patterns, hub hosts, limits): rules/hub.yaml.
"""
from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor import settings
from auditor.errors import AuditorError
from auditor.model import Options, Snapshot
from auditor.parsers import lineage, repoid
from auditor.sources.hub import _ancestors, _files
from auditor.sources.hub._download import DownloadProgress
from auditor.sources.hub._files import copy_snapshot, evict, reporting
from auditor.sources.hub._files import unsafe_path as _unsafe_path
from auditor.sources.hub._http import budget_of, config, explain, network_errors, ranged_head, recording, token_for
from auditor.sources.hub._http import token_for as _token
from auditor.sources.hub._retry import Budget

__all__ = ["DownloadProgress", "config", "copy_snapshot", "evict", "open_snapshot", "parse_target", "reporting",
           "resolve_endpoint", "cache_root", "_unsafe_path", "_token"]

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HUB_URL = re.compile(r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?:models/)?"
                      r"([^/@\s]+(?:/[^/@\s]+)?)(?:/(?:tree|blob|resolve)/([^/\s]+))?/?$")
ENDPOINT_RECORD = ".auditor-endpoint"
CARD_KEYS = ("base_model", "base_model_relation", "license", "license_name", "license_link", "model_creator")


# --- target and endpoint -----------------------------------------------------------------------

def parse_target(target: str, revision: str = "") -> tuple[str, str]:
    """`hf://org/name@rev`, `org/name[@rev]`, `https://huggingface.co/org/name[/tree/rev]`, a single
    name (`gpt2`) -> (repo_id, revision); `revision` must agree with one in the target."""
    for scheme in config()["target_schemes_unsupported"]:
        if target.lower().startswith(scheme):
            raise AuditorError(f"{target}: fetching from {scheme.rstrip(':/')} is not supported; "
                               "download the model yourself and audit the local folder")
    url = _HUB_URL.match(target)
    if url:
        text, rev = url.group(1), url.group(2) or ""
    else:
        text = target[5:] if target.startswith("hf://") else target
        text = text.removeprefix("models/").strip("/")
        text, _, rev = text.partition("@")
    if not (repoid.is_repo_id(text) or repoid.SINGLE_NAME.match(text)):
        raise AuditorError(f"{target}: not a Hub repo id (expected org/name)")
    if rev and revision and rev != revision:
        raise AuditorError(f"{target}: revision {rev!r} in the target disagrees with --revision {revision!r}")
    return text, rev or revision


def resolve_endpoint(endpoint: str) -> str:
    chosen = (endpoint or settings.current().hf_endpoint or config()["default_endpoint"]).strip().rstrip("/")
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuditorError(f"endpoint {chosen!r} is not an http(s) URL")
    host = parts.hostname.lower()
    for hub in config()["unsupported_hubs"]:
        if host == hub["host"] or host.endswith("." + hub["host"]):
            raise AuditorError(f"endpoint {chosen} is {hub['name']}, whose API auditor does not fetch from; "
                               "download the model yourself and audit the local folder")
    return chosen


def _slug(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    slug = re.sub(r"[^\w.-]", "_", f"{parts.hostname}_{parts.port or parts.scheme}")
    return f"{slug}-{hashlib.sha256(endpoint.encode()).hexdigest()[:12]}"


def cache_root(options: Options, endpoint: str, repo_id: str = "") -> Path:
    """Where the repo's bytes go (see the module docstring); never a folder filled from another endpoint."""
    current = settings.current()
    if options.cache_dir:
        base = Path(options.cache_dir).expanduser()
    elif current.cache_dir:
        return Path(current.cache_dir).expanduser() / _slug(endpoint)
    elif _hf_cache_endpoint() == endpoint and current.hf_hub_cache:
        base = Path(current.hf_hub_cache).expanduser()
    elif _hf_cache_endpoint() == endpoint:
        base = Path.home() / ".cache" / "huggingface" / "hub"
    else:
        return Path.home() / ".cache" / "auditor" / "hub" / _slug(endpoint)
    if repo_id and _recorded_endpoint(base, repo_id) not in ("", endpoint):
        return base / ".auditor-endpoints" / _slug(endpoint)
    return base


def _hf_cache_endpoint() -> str:
    """The endpoint huggingface_hub's own cache is filled from in this environment."""
    return (settings.current().hf_endpoint or config()["default_endpoint"]).strip().rstrip("/")


def _recorded_endpoint(cache: Path, repo_id: str) -> str:
    record = _files.repo_folder(cache, repo_id) / ENDPOINT_RECORD
    try:
        return record.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _record_endpoint(cache: Path, repo_id: str, endpoint: str) -> None:
    folder = _files.repo_folder(cache, repo_id)
    folder.mkdir(parents=True, exist_ok=True)
    if not _recorded_endpoint(cache, repo_id):
        (folder / ENDPOINT_RECORD).write_text(endpoint + "\n", encoding="utf-8")


def evict_mismatched(result: Any) -> list[str]:
    """After an audit: the cached files whose bytes did not match the publisher's hash leave the cache."""
    snap = result.snapshot
    bad = sorted({f.file for f in result.findings if f.rule == "HUB-HASH-MISMATCH" and f.file})
    if snap.kind != "hub" or not bad or snap.facts.get("offline"):
        return []
    cache = Path(snap.facts.get("cache_dir") or "")
    _files.record_suspects(cache, snap.repo_id, Path(snap.root), bad)
    return _files.evict(Path(snap.root), bad)


# --- the snapshot ------------------------------------------------------------------------------

def open_snapshot(target: str, options: Options) -> Snapshot:
    repo_id, requested = parse_target(target, options.revision)
    endpoint = resolve_endpoint(options.endpoint)
    cache = cache_root(options, endpoint, repo_id)
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise AuditorError("fetching from the Hub needs huggingface_hub: pip install 'auditor[hub]'") from None
    if options.offline or settings.current().hf_offline:
        from auditor.sources.hub import _offline
        return _offline.open_snapshot(target, repo_id, requested, endpoint, cache)
    from huggingface_hub.utils import disable_progress_bars
    disable_progress_bars()
    token = token_for(options, endpoint)
    budget = budget_of(options)
    with recording(endpoint, budget) as log:
        try:
            facts, root, publisher, ancestors, commit = _fetch(repo_id, requested, endpoint, token, cache, budget,
                                                               options)
        except KeyboardInterrupt:
            budget.stop()           # downloads in worker threads stop at their next chunk; partials are kept
            raise
    facts["authorization_withheld_from"] = sorted(set(log.stripped))
    return Snapshot(
        root=str(root), kind="hub", target=target, repo_id=repo_id, requested_revision=requested,
        resolved_revision=commit, endpoint=endpoint, hosts_contacted=tuple(log.hosts),
        publisher_hashes=publisher, metadata_only=options.metadata_only,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"), ancestors=ancestors, facts=facts)


def _fetch(repo_id: str, requested: str, endpoint: str, token: str | bool, cache: Path, budget: Budget,
           options: Options) -> tuple[dict[str, Any], Path, dict[str, dict[str, Any]], tuple, str]:
    from huggingface_hub import HfApi
    what = f"{repo_id} on {endpoint}"
    api = HfApi(endpoint=endpoint, token=token)
    timeout = budget.timeout
    try:
        commit, revision_kind = _resolve(api, repo_id, requested, timeout)
        unsafe: list[str] = []
        entries = _files.tree(api, repo_id, commit, budget, unsafe, options.limits.max_files)
        info = api.model_info(repo_id, revision=commit, timeout=timeout)
        publisher = {path: _files.publisher_hash(e) for path, e in entries.items()}
        wanted = sorted(p for p, e in entries.items()
                        if not options.metadata_only or not _files.is_weight(p, e.size))
        _record_endpoint(cache, repo_id, endpoint)
        _files.record_tree(cache, repo_id, commit, entries)
        root, mismatched, hashed = _files.download(repo_id, commit, wanted, publisher, endpoint, token, cache,
                                                   budget)
        _files.record_ref(cache, repo_id, requested, commit)
        walk = _ancestors.Walk(api, endpoint, token, cache, budget)
        card, notes, conflicts = _verified_card(root, publisher, info, wanted)
        headers = _remote_gguf_headers(repo_id, commit, endpoint, token, entries, wanted, budget, notes)
        refs = lineage.unique(lineage.card_refs(card) + lineage.adapter_refs(root, _verified(root, publisher, wanted))
                              + lineage.gguf_refs(root, [p for p in wanted if p.lower().endswith(".gguf")])
                              + [r for meta in headers.values() for r in lineage.gguf_metadata_refs(meta, "GGUF")])
        ancestors = tuple(_ancestors.follow(walk, repo_id, refs))
    except AuditorError:
        raise
    except network_errors() as exc:
        raise explain(exc, what, budget) from None
    siblings = {s.rfilename for s in (getattr(info, "siblings", None) or []) if getattr(s, "rfilename", None)}
    facts = {"link_root": str(root.parent.parent), "revision_kind": revision_kind, "card": card,
             "remote_files": [{"path": p, **publisher[p], "downloaded": False} for p in sorted(entries)
                              if p not in wanted],
             "signature_files": sorted(p for p in entries if p.endswith((".sig", ".sigstore", ".sigstore.json"))),
             "cache_dir": str(cache), "unsafe_paths": unsafe, "remote_headers": headers,
             "listing_missing": sorted(p for p in siblings - set(entries) - set(unsafe) if not _unsafe_path(p))[:200],
             "card_conflicts": conflicts, "unverified_sources": notes + walk.notes,
             "download_mismatched": mismatched, "verified_sha256": hashed}
    return facts, root, publisher, ancestors, commit


def _verified(root: Path, publisher: dict[str, dict[str, Any]], wanted: list[str]) -> set[str]:
    """The small downloaded files whose bytes match the listing (weights are the integrity scanner's)."""
    ok = set()
    for path in wanted:
        local = root / path
        if path in publisher and local.is_file() and local.stat().st_size <= config()["metadata_max_bytes"] \
                and not _files.is_weight(path, local.stat().st_size) and _files.matches(local, publisher[path]):
            ok.add(path)
    return ok


def _verified_card(root: Path, publisher: dict[str, dict[str, Any]], info: Any,
                   wanted: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    """The front matter of the README whose hash matched, and how the API's cardData differs from it."""
    notes: list[str] = []
    card: dict[str, Any] = {}
    if "README.md" in wanted:
        if "README.md" in _verified(root, publisher, ["README.md"]):
            card = lineage.read_card(root, {"README.md"})
        else:
            notes.append("README.md: the bytes served do not match the listing's hash; its card is not used")
    api_card = _card_dict(info)
    conflicts = [f"{key}: cardData says {api_card.get(key)!r}, the verified README says {card.get(key)!r}"
                 for key in CARD_KEYS if _norm(api_card.get(key)) != _norm(card.get(key))]
    return card, notes, conflicts


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        return sorted(str(v) for v in value) if len(value) != 1 else str(value[0])
    return str(value) if value not in (None, "", []) else None


def _card_dict(info: Any) -> dict[str, Any]:
    data = getattr(info, "card_data", None)
    if data is None:
        return {}
    try:
        return dict(data.to_dict())
    except Exception:  # noqa: BLE001 - a malformed cardData is simply not compared
        return {}


def _remote_gguf_headers(repo_id: str, commit: str, endpoint: str, token: str | bool, entries: dict[str, Any],
                         wanted: list[str], budget: Budget, notes: list[str]) -> dict[str, dict[str, Any]]:
    """general.* of each GGUF that was not downloaded, from a ranged read of its header."""
    from huggingface_hub import hf_hub_url

    from auditor.parsers import gguf
    limit = int(config()["gguf_header_bytes"])
    headers: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in entries if p.lower().endswith(".gguf") and p not in wanted)[:4]:
        url = hf_hub_url(repo_id, path, revision=commit, endpoint=endpoint)
        data = ranged_head(url, token, limit, budget)
        try:
            metadata = gguf.read(data, len(data)).metadata
        except Exception:  # noqa: BLE001 - a header cut at the limit or broken: nothing read from it
            notes.append(f"{path}: the first {limit} bytes do not hold a readable GGUF header; its lineage is unknown")
            continue
        headers[path] = {k: v for k, v in metadata.items() if k.startswith("general.") and isinstance(v, str | int)}
        notes.append(f"{path}: lineage read from a ranged header read, which cannot be hash-verified "
                     "(--metadata-only)")
    return headers


def _resolve(api: Any, repo_id: str, requested: str, timeout: float) -> tuple[str, str]:
    """The commit SHA for the requested revision, and whether it was a commit, tag or branch."""
    from huggingface_hub import errors
    revision = requested or "main"
    try:
        info = api.model_info(repo_id, revision=revision, timeout=timeout)
    except errors.RepositoryNotFoundError:
        # Some mirrors (olah) answer 401 RepoNotFound for a missing revision too: tell them apart.
        if revision != "main" and _repo_exists(api, repo_id, timeout):
            raise AuditorError(f"{repo_id}: revision {revision!r} not found") from None
        raise
    except errors.RevisionNotFoundError:
        raise AuditorError(f"{repo_id}: revision {revision!r} not found") from None
    commit = str(info.sha or "")
    if not _HEX40.match(commit):
        raise AuditorError(f"{repo_id}@{revision}: the endpoint did not return a commit SHA")
    if _HEX40.match(revision.lower()):
        if commit != revision.lower():
            raise AuditorError(f"{repo_id}: asked for commit {revision} but the endpoint answered {commit}")
        return commit, "commit"
    kind = "branch"
    try:
        refs = api.list_repo_refs(repo_id)
        if any(t.name == revision for t in refs.tags):
            kind = "tag"
        elif not any(b.name == revision for b in refs.branches):
            kind = "unknown"
    except network_errors():
        kind = "unknown"
    return commit, kind


def _repo_exists(api: Any, repo_id: str, timeout: float) -> bool:
    try:
        api.model_info(repo_id, revision="main", timeout=timeout)
        return True
    except network_errors():
        try:
            api.list_repo_refs(repo_id)
            return True
        except network_errors():
            return False
