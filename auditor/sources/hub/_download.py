"""The tree listing (bounded) and verified, resumable, cancellable downloads into the Hugging Face cache.

huggingface_hub serves here for URLs (`hf_hub_url`), headers (`build_hf_headers`), the session (with
auditor's retry transport, _retry.py), error types (`hf_raise_for_status`), listing entries (`RepoFile`)
and the cache layout (relative snapshot symlinks, refs/<revision>, trees/<commit>.json). What it does
not do is written here: its listing follows `Link: next` without end; its downloads delete a partial
file, never check a hash and run to the end of the file in flight after Ctrl-C.

A download goes to `blobs/<hash>.incomplete`; an interrupted one is kept and resumed with a Range
request; the blob is placed (renamed to `blobs/<hash>`) only when size and hash match the listing. Bytes
that do not match are put in the snapshot as a plain file (so the audit reports the mismatch) and never
become a blob another run or huggingface_hub could reuse; a resumed partial that fails is discarded and
fetched once more from the start.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

from auditor.errors import AuditorError
from auditor.record import record
from auditor.sources.hub._retry import Budget, transient_errors

# (path, bytes of that file so far, its size, bytes of the whole transfer so far, its total)
DownloadProgress = Callable[[str, int, int, int, int], None]
CHUNK = 1 << 20


@record(frozen=True)
class Job:
    path: str
    expected: dict[str, Any]          # sha256 or git_sha1, and size (the publisher's listing)

    @property
    def blob_name(self) -> str:
        return str(self.expected.get("sha256") or self.expected.get("git_sha1") or "")

    @property
    def size(self) -> int:
        return int(self.expected.get("size") or 0)


def list_tree(session: Any, endpoint: str, repo_id: str, commit: str, headers: dict[str, str], budget: Budget,
              max_pages: int, max_entries: int) -> Iterator[dict[str, Any]]:
    """The raw entries of the recursive listing at `commit`, page by page, at most `max_pages` pages and
    `max_entries` entries; a server whose pages never end (or repeat) is an error, not a hang."""
    from huggingface_hub.utils import hf_raise_for_status
    url: str | None = f"{endpoint}/api/models/{repo_id}/tree/{quote(commit, safe='')}"
    params: dict[str, Any] | None = {"recursive": "True", "expand": "False"}
    seen_pages: set[str] = set()
    count = 0
    for page in range(max_pages + 1):
        if url is None:
            return
        if page == max_pages or url in seen_pages:
            raise AuditorError(f"{repo_id}@{commit}: the tree listing did not end after {page} page(s) "
                               f"({count} entries; limit {max_pages} pages)")
        seen_pages.add(url)
        budget.check()
        response = session.get(url, params=params, headers=headers, timeout=budget.request_timeout())
        hf_raise_for_status(response)
        items = response.json()
        if not isinstance(items, list):
            raise AuditorError(f"{repo_id}@{commit}: the tree listing is not a list")
        for item in items:
            count += 1
            if count > max_entries:
                raise AuditorError(f"{repo_id}@{commit}: the listing has more than {max_entries} entries (limit)")
            if isinstance(item, dict):
                yield item
        following = response.links.get("next", {}).get("url")
        url, params = (urljoin(str(response.url), following) if following else None), None


class Transfer:
    """One fetch's downloads: the shared progress totals and the cancel flag."""

    def __init__(self, jobs: list[Job], budget: Budget, progress: DownloadProgress | None) -> None:
        self.total = sum(j.size for j in jobs)
        self.done = 0
        self.budget = budget
        self.progress = progress
        self.lock = threading.Lock()
        # path -> [sha256, st_dev, st_ino, size, mtime_ns, ctime_ns] of blobs hashed while downloading
        self.verified: dict[str, list[Any]] = {}

    def advance(self, path: str, file_done: int, file_size: int, delta: int) -> None:
        with self.lock:
            self.done += delta
            done = self.done
        if self.progress:
            self.progress(path, file_done, file_size, done, self.total)


def download(repo_id: str, commit: str, jobs: list[Job], endpoint: str, token: str | bool, storage: Path,
             budget: Budget, progress: DownloadProgress | None = None,
             workers: int = 8) -> tuple[Path, list[str], dict[str, list[Any]]]:
    """Fetch `jobs` at `commit` into the cache folder `storage` (models--org--name); return the snapshot
    folder, the paths whose bytes did not match the listing, and the sha256 and file identity of each
    blob hashed while it was downloaded (the inventory reuses a hash while the identity is unchanged).
    Cached blobs are reused, no request."""
    from huggingface_hub.file_download import _cache_commit_hash_for_specific_revision
    root = storage / "snapshots" / commit
    root.mkdir(parents=True, exist_ok=True)
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    todo = [job for job in jobs if not _reuse(storage, root, job)]
    mismatched: list[str] = []
    transfer = Transfer(todo, budget, progress)
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            futures = [pool.submit(_fetch_one, repo_id, commit, job, endpoint, token, storage, root, transfer)
                       for job in todo]
            try:
                done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()
            except BaseException:
                budget.stop()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        mismatched = sorted(job.path for job, future in zip(todo, futures, strict=True) if future.result())
    _cache_commit_hash_for_specific_revision(str(storage), commit, commit)
    return root, mismatched, transfer.verified


def _identity(path: Path) -> tuple[int, int, int, int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _reuse(storage: Path, root: Path, job: Job) -> bool:
    """A blob already in the cache under the listed hash, with the listed size: link it, no request.
    (Its bytes are hashed again by the audit; a mismatch evicts it.)"""
    blob = storage / "blobs" / job.blob_name
    if not job.blob_name or not blob.is_file() or (job.size and blob.stat().st_size != job.size):
        return False
    _link(blob, root / job.path)
    return True


def _link(blob: Path, dest: Path) -> None:
    from huggingface_hub.file_download import _create_symlink
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() and os.path.realpath(dest) == os.path.realpath(blob):
        return
    _create_symlink(str(blob), str(dest), new_blob=False)


def _fetch_one(repo_id: str, commit: str, job: Job, endpoint: str, token: str | bool, storage: Path, root: Path,
               transfer: Transfer) -> bool:
    """Download one file; True when its bytes did not match the listing (placed as a plain file)."""
    from huggingface_hub import hf_hub_url
    url = hf_hub_url(repo_id, job.path, revision=commit, endpoint=endpoint)
    name = job.blob_name or hashlib.sha256(job.path.encode()).hexdigest()
    partial = storage / "blobs" / f"{name}.incomplete"
    for fresh in (False, True):
        if fresh:
            partial.unlink(missing_ok=True)
        resumed = partial.exists()
        digest = _receive(url, token, job, partial, transfer)
        if _matches(job, partial, digest):
            blob = storage / "blobs" / job.blob_name
            os.replace(partial, blob)
            _link(blob, root / job.path)
            if job.expected.get("sha256"):
                transfer.verified[job.path] = [job.blob_name, *_identity(blob)]
            return False
        if not resumed:
            break
    dest = root / job.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    os.replace(partial, dest)
    return True


def _matches(job: Job, partial: Path, digest: Any) -> bool:
    return bool(job.blob_name) and partial.stat().st_size == job.size and digest.hexdigest() == job.blob_name


def _new_digest(job: Job) -> Any:
    if job.expected.get("git_sha1") and not job.expected.get("sha256"):
        return hashlib.sha1(b"blob %d\0" % job.size, usedforsecurity=False)
    return hashlib.sha256()


class _BodyCut(Exception):
    """A transient failure after the answer started (the transport retries those before it)."""

    def __init__(self, cause: BaseException, have: int, digest: Any) -> None:
        super().__init__(str(cause))
        self.cause, self.have, self.digest = cause, have, digest


def _receive(url: str, token: str | bool, job: Job, partial: Path, transfer: Transfer) -> Any:
    """Append the rest of the file to `partial` (a Range request from what it holds) and return the hash
    of all of it. A body cut mid-way resumes where it stopped; tries that bring no new byte count
    against the retry policy (failures before an answer are the transport's to retry)."""
    budget = transfer.budget
    digest = _new_digest(job)
    have = _hash_prefix(partial, digest, job.size)
    transfer.advance(job.path, have, job.size, have)
    waits = budget.policy.waits()
    stalls = 0
    started = time.monotonic()
    while True:
        budget.check()
        before = have
        try:
            have, digest = _stream(url, token, job, partial, digest, have, transfer)
            return digest
        except _BodyCut as cut:
            have, digest = cut.have, cut.digest
            stalls = 0 if have > before else stalls + 1
            budget.last_failure = f"{stalls + 1} attempt(s) without progress in {time.monotonic() - started:.1f} s"
            if stalls > len(waits):
                raise cut.cause from None
            budget.wait(waits[max(0, stalls - 1)])


def _hash_prefix(partial: Path, digest: Any, size: int) -> int:
    """Hash what an earlier, interrupted download left; a partial longer than the file is dropped."""
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        return 0
    if size and have > size:
        partial.unlink()
        return 0
    with open(partial, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return have


def _stream(url: str, token: str | bool, job: Job, partial: Path, digest: Any, have: int,
            transfer: Transfer) -> tuple[int, Any]:
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
    budget = transfer.budget
    headers = {**build_hf_headers(token=token), "Accept-Encoding": "identity"}
    if have and job.size and have >= job.size:
        return have, digest
    if have:
        headers["Range"] = f"bytes={have}-"
    with get_session().stream("GET", url, headers=headers, timeout=budget.request_timeout()) as response:
        budget.track(response)
        try:
            hf_raise_for_status(response)
            if have and (response.status_code != 206 or not _range_starts_at(response, have)):
                transfer.advance(job.path, 0, job.size, -have)
                digest, have = _new_digest(job), 0          # the server sent the whole file again
                partial.unlink(missing_ok=True)
            with open(partial, "ab") as fh:
                try:
                    for chunk in response.iter_bytes():      # as received: a cut keeps every byte
                        budget.check()
                        fh.write(chunk)
                        digest.update(chunk)
                        have += len(chunk)
                        transfer.advance(job.path, have, job.size, len(chunk))
                        if job.size and have > job.size:
                            break                            # longer than listed: a mismatch, stop reading
                except transient_errors() as exc:
                    raise _BodyCut(exc, have, digest) from exc
        finally:
            budget.untrack(response)
    return have, digest


def _range_starts_at(response: Any, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")
