"""A model on the Hugging Face Hub or a mirror of it, fetched pinned and verified.

The revision is resolved to a commit SHA once, and everything (tree listing, files, the card) is read
at that SHA. The publisher's per-file hashes come from the tree listing (lfs.sha256, or the git blob
SHA-1), which is also all `--metadata-only` needs to list the weights without downloading them.
Files land in a cache folder per endpoint so that bytes from two origins never mix. Every host
contacted, redirects included, is recorded by a request hook on huggingface_hub's HTTP client.
The lineage (base_model, adapter base, GGUF base) is followed through the same endpoint.

Data (metadata-only patterns, hub hosts, limits): rules/hub.yaml.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor import rules, settings
from auditor.errors import AuditorError
from auditor.model import Ancestor, Options, Snapshot
from auditor.parsers import licensetext, lineage

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def config() -> dict[str, Any]:
    return rules.load("hub.yaml")


# --- target and endpoint -----------------------------------------------------------------------

def parse_target(target: str, revision: str = "") -> tuple[str, str]:
    """`hf://org/name@rev` or `org/name[@rev]` -> (repo_id, revision); `revision` must agree."""
    for scheme in config()["target_schemes_unsupported"]:
        if target.lower().startswith(scheme):
            raise AuditorError(f"{target}: fetching from {scheme.rstrip(':/')} is not supported; "
                               "download the model yourself and audit the local folder")
    text = target[5:] if target.startswith("hf://") else target
    text = text.removeprefix("models/").strip("/")
    repo_id, _, rev = text.partition("@")
    if not _REPO_ID.match(repo_id):
        raise AuditorError(f"{target}: not a Hub repo id (expected org/name)")
    if rev and revision and rev != revision:
        raise AuditorError(f"{target}: revision {rev!r} in the target disagrees with --revision {revision!r}")
    return repo_id, rev or revision


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


def cache_root(options: Options, endpoint: str) -> Path:
    """One cache folder per endpoint: `<cache>/<host>_<port>-<hash of the URL>`."""
    base = Path(options.cache_dir or settings.current().cache_dir or Path.home() / ".cache" / "auditor" / "hub")
    parts = urlsplit(endpoint)
    slug = re.sub(r"[^\w.-]", "_", f"{parts.hostname}_{parts.port or parts.scheme}")
    return base.expanduser() / f"{slug}-{hashlib.sha256(endpoint.encode()).hexdigest()[:12]}"


def _token(options: Options, endpoint: str) -> str | bool:
    """An explicit token (Options.token, or AUDITOR_HUB_TOKEN meant for the chosen endpoint) is sent;
    the saved Hub token (huggingface_hub.get_token) only to the public Hub's hosts."""
    if options.token is not None and options.token is not True:
        return options.token or False
    if settings.current().hub_token:
        return settings.current().hub_token
    host = (urlsplit(endpoint).hostname or "").lower()
    if host not in config()["hub_hosts"] and options.token is not True:
        return False      # a mirror never gets the saved Hub token implicitly
    from huggingface_hub import get_token
    return get_token() or False


def _timeout() -> float:
    try:
        return float(settings.current().hub_timeout or config()["timeout_seconds"])
    except ValueError:
        return float(config()["timeout_seconds"])


# --- HTTP: every host contacted ----------------------------------------------------------------

class _HostLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hosts: list[str] = []

    def add(self, url: Any) -> None:
        parts = urlsplit(str(url))
        host = f"{parts.scheme}://{parts.netloc}"
        with self.lock:
            if host not in self.hosts:
                self.hosts.append(host)


_active_logs: list[_HostLog] = []
_factory_lock = threading.Lock()


@contextmanager
def _recording(timeout: float) -> Iterator[_HostLog]:
    """Install a client factory whose request hook records every URL (each redirect hop fires it)."""
    import httpx2
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils import _http

    constants.HF_HUB_DISABLE_XET = not settings.current().hub_xet
    constants.HF_HUB_DISABLE_TELEMETRY = True
    _no_agent_registry()
    log = _HostLog()

    def on_request(request: Any) -> None:
        for active in list(_active_logs):
            active.add(request.url)

    def factory() -> Any:
        return httpx2.Client(event_hooks={"request": [_http.hf_request_event_hook, on_request]},
                             follow_redirects=True, timeout=httpx2.Timeout(timeout))

    with _factory_lock:
        _active_logs.append(log)
        set_client_factory(factory)
    try:
        yield log
    finally:
        with _factory_lock:
            _active_logs.remove(log)


def _no_agent_registry() -> None:
    """huggingface_hub 2.4 fetches `<HF_ENDPOINT>/api/agent-harnesses` from huggingface.co to build its
    User-Agent, whatever endpoint the call uses: a direct connection to the public Hub from a
    mirror-only fetch. An empty registry in place of it keeps every request on the chosen endpoint."""
    try:
        from huggingface_hub.utils import _detect_agent
    except ImportError:
        return
    if hasattr(_detect_agent, "_registry") and hasattr(_detect_agent, "_EMPTY_REGISTRY"):
        _detect_agent._registry = _detect_agent._EMPTY_REGISTRY


def _explain(exc: BaseException, what: str) -> AuditorError:
    """One line for the user from a huggingface_hub / httpx2 error."""
    from huggingface_hub import errors
    name = type(exc).__name__
    if isinstance(exc, errors.RevisionNotFoundError):
        return AuditorError(f"{what}: revision not found")
    if isinstance(exc, errors.GatedRepoError):
        return AuditorError(f"{what}: the repo is gated; accept its terms on the Hub and pass a token")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return AuditorError(f"{what}: repository not found (or private and no token was given)")
    if isinstance(exc, (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError)):
        return AuditorError(f"{what}: file not found")
    if "Timeout" in name or "timed out" in str(exc).lower():
        return AuditorError(f"{what}: the server did not answer within {_timeout():g} s")
    if "Connect" in name or isinstance(exc, ConnectionError):
        return AuditorError(f"{what}: cannot connect to the endpoint ({name})")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status:
        return AuditorError(f"{what}: the server answered HTTP {status}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return AuditorError(f"{what}: {name}{': ' + first if first else ''}")


def _network_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub import errors
    return (httpx2.HTTPError, errors.HfHubHTTPError, OSError, ValueError, errors.OfflineModeIsEnabled)


# --- the snapshot ------------------------------------------------------------------------------

def open_snapshot(target: str, options: Options) -> Snapshot:
    repo_id, requested = parse_target(target, options.revision)
    endpoint = resolve_endpoint(options.endpoint)
    what = f"{repo_id} on {endpoint}"
    cache = cache_root(options, endpoint)
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise AuditorError("fetching from the Hub needs huggingface_hub: pip install 'auditor[hub]'") from None
    from huggingface_hub.utils import disable_progress_bars
    disable_progress_bars()
    token = _token(options, endpoint)
    timeout = _timeout()
    with _recording(timeout) as log:
        api = HfApi(endpoint=endpoint, token=token)
        try:
            commit, revision_kind = _resolve(api, repo_id, requested, timeout)
            unsafe: list[str] = []
            entries = _tree(api, repo_id, commit, unsafe, options.limits.max_files)
            info = api.model_info(repo_id, revision=commit, timeout=timeout)
        except AuditorError:
            raise
        except _network_errors() as exc:
            raise _explain(exc, what) from None
        publisher = {path: _publisher_hash(e) for path, e in entries.items()}
        wanted = sorted(p for p, e in entries.items() if not options.metadata_only or not _is_weight(p, e))
        try:
            root = _download(repo_id, commit, wanted, endpoint, token, cache, timeout)
        except AuditorError:
            raise
        except _network_errors() as exc:
            raise _explain(exc, f"{what}: download") from None
        card = _card_dict(info) or lineage.read_card(root)
        refs = (lineage.card_refs(card) + lineage.adapter_refs(root)
                + lineage.gguf_refs(root, [p for p in wanted if p.lower().endswith(".gguf")]))
        ancestors = tuple(_follow(api, repo_id, refs, endpoint, token, cache, timeout))
    remote_files = [{"path": p, **publisher[p], "downloaded": False} for p in sorted(entries) if p not in wanted]
    signature_files = sorted(p for p in entries if p.endswith((".sig", ".sigstore", ".sigstore.json")))
    return Snapshot(
        root=str(root), kind="hub", target=target, repo_id=repo_id, requested_revision=requested,
        resolved_revision=commit, endpoint=endpoint, hosts_contacted=tuple(log.hosts),
        publisher_hashes=publisher, metadata_only=options.metadata_only,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"), ancestors=ancestors,
        facts={"link_root": str(root.parent.parent), "revision_kind": revision_kind, "card": card,
               "remote_files": remote_files, "signature_files": signature_files, "cache_dir": str(cache),
               "unsafe_paths": unsafe})


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
    except _network_errors():
        kind = "unknown"
    return commit, kind


def _repo_exists(api: Any, repo_id: str, timeout: float) -> bool:
    try:
        api.model_info(repo_id, revision="main", timeout=timeout)
        return True
    except _network_errors():
        try:
            api.list_repo_refs(repo_id)
            return True
        except _network_errors():
            return False


def _tree(api: Any, repo_id: str, commit: str, unsafe: list[str] | None = None,
          limit: int = 200_000) -> dict[str, Any]:
    """The publisher's file listing at `commit`; paths that could escape a folder go to `unsafe`."""
    from huggingface_hub.hf_api import RepoFile
    entries: dict[str, Any] = {}
    for count, entry in enumerate(api.list_repo_tree(repo_id, revision=commit, recursive=True)):
        if count >= limit:
            raise AuditorError(f"{repo_id}@{commit}: the listing has more than {limit} entries (limit)")
        if not isinstance(entry, RepoFile):
            continue
        if _unsafe_path(entry.path):
            if unsafe is not None:
                unsafe.append(entry.path[:300])
            continue
        entries[entry.path] = entry
    return entries


def _unsafe_path(path: str) -> bool:
    parts = path.split("/")
    return (not path or path.startswith("/") or "\\" in path or "\0" in path or ":" in parts[0]
            or any(p in ("", ".", "..") for p in parts))


def _publisher_hash(entry: Any) -> dict[str, Any]:
    if entry.lfs is not None and getattr(entry.lfs, "sha256", None):
        return {"sha256": entry.lfs.sha256, "size": entry.lfs.size}
    if entry.blob_id:
        return {"git_sha1": entry.blob_id, "size": entry.size}
    return {"size": entry.size}


def _is_weight(path: str, entry: Any) -> bool:
    cfg = config()
    lowered = path.lower()
    return lowered.endswith(tuple(cfg["weight_suffixes"])) or (entry.size or 0) > cfg["metadata_max_bytes"]


def _card_dict(info: Any) -> dict[str, Any]:
    data = getattr(info, "card_data", None)
    if data is None:
        return {}
    try:
        return dict(data.to_dict())
    except Exception:  # noqa: BLE001 - a malformed card is read from the file instead
        return {}


def _download(repo_id: str, commit: str, paths: list[str], endpoint: str, token: str | bool,
              cache: Path, timeout: float) -> Path:
    """Download `paths` at `commit` into the endpoint's cache; return the snapshot folder."""
    from huggingface_hub import snapshot_download
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit
    if not paths:
        root.mkdir(parents=True, exist_ok=True)
        return root
    patterns = [_glob_escape(p) for p in paths]
    try:
        folder = snapshot_download(repo_id, revision=commit, cache_dir=str(cache), endpoint=endpoint, token=token,
                                   allow_patterns=patterns, etag_timeout=timeout, max_workers=4)
    except BaseException:
        _drop_incomplete(cache, repo_id)
        raise
    return Path(folder)


def _glob_escape(path: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path)


def _drop_incomplete(cache: Path, repo_id: str) -> None:
    blobs = cache / f"models--{repo_id.replace('/', '--')}" / "blobs"
    if blobs.is_dir():
        for partial in blobs.glob("*.incomplete"):
            partial.unlink(missing_ok=True)


# --- lineage -----------------------------------------------------------------------------------

def _follow(api: Any, child_id: str, refs: list[lineage.BaseRef], endpoint: str, token: str | bool,
            cache: Path, timeout: float) -> Iterator[Ancestor]:
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
        if not ref.valid:
            yield Ancestor(ref.repo_id, ref.relation, depth, parent, error=f"not a Hub repo id (from {ref.source})")
            continue
        if key in chain:
            yield Ancestor(ref.repo_id, ref.relation, depth, parent,
                           error="cycle: " + " -> ".join((*chain, key)))
            continue
        if key in seen:
            continue
        seen.add(key)
        if depth > max_depth:
            yield Ancestor(ref.repo_id, ref.relation, depth, parent, error=f"depth limit {max_depth} reached")
            continue
        if resolved >= max_total:
            yield Ancestor(ref.repo_id, ref.relation, depth, parent,
                           error=f"depth limit: more than {max_total} ancestors in the lineage")
            continue
        resolved += 1
        ancestor, parents = _resolve_ancestor(api, ref, parent, depth, endpoint, token, cache, timeout)
        yield ancestor
        queue.extend((p, ref.repo_id, depth + 1, (*chain, key)) for p in parents[:max_parents])


def _resolve_ancestor(api: Any, ref: lineage.BaseRef, parent: str, depth: int, endpoint: str,
                      token: str | bool, cache: Path, timeout: float) -> tuple[Ancestor, list[lineage.BaseRef]]:
    try:
        info = api.model_info(ref.repo_id, revision="main", timeout=timeout)
        commit = str(info.sha or "")
        card = _card_dict(info)
        texts = _license_texts(api, ref.repo_id, commit, endpoint, token, cache, timeout)
    except _network_errors() as exc:
        reason = str(_explain(exc, f"{ref.repo_id} on {endpoint}"))
        return Ancestor(ref.repo_id, ref.relation, depth, parent, error=reason), []
    ancestor = Ancestor(ref.repo_id, ref.relation, depth, parent, commit=commit, card=card, license_texts=texts)
    return ancestor, lineage.card_refs(card, source=f"{ref.repo_id}/README.md")


def _license_texts(api: Any, repo_id: str, commit: str, endpoint: str, token: str | bool, cache: Path,
                   timeout: float) -> dict[str, str]:
    from huggingface_hub import hf_hub_download
    cfg = config()
    limit = int(cfg["license_file_max_bytes"])
    texts: dict[str, str] = {}
    for entry in _tree(api, repo_id, commit).values():
        name = entry.path
        if "/" in name or not licensetext.catalog().file_role(name) or (entry.size or 0) > limit:
            continue
        local = hf_hub_download(repo_id, name, revision=commit, cache_dir=str(cache), endpoint=endpoint,
                                token=token, etag_timeout=timeout)
        with open(local, "rb") as fh:
            texts[name] = fh.read(limit).decode("utf-8", "replace")
    return texts


def copy_snapshot(root: Path, dest: Path, paths: list[str] | None = None,
                  on_file: Callable[[str], None] | None = None) -> None:
    """Copy the snapshot's files (symlinks into the cache dereferenced) into a fresh folder `dest`."""
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".cache"]
        for name in names:
            src = Path(dirpath) / name
            rel = src.relative_to(root).as_posix()
            if paths is not None and rel not in paths:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            if on_file:
                on_file(rel)

