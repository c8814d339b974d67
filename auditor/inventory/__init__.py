"""One safe walk of the snapshot: every file's size, SHA-256 and real format.

Symlinks are never followed out of the root, special files are never opened, and the format is
decided by the content first and the extension second (rules/formats.yaml).
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from auditor import rules
from auditor.inventory.detect import HEAD, UNKNOWN_SIZE, detect
from auditor.model import FileRecord, Finding, Options, Snapshot
from auditor.record import field, record, replace

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["HEAD", "UNKNOWN_SIZE", "Hashing", "Inventory", "Progress", "build", "changed_since", "detect",
           "extension_format", "survey"]

CHUNK = 4 * 1024 * 1024
SKIPPED_DIRS = {".git", ".hg", ".svn"}

Progress = Callable[[int, int], None]   # (bytes hashed so far, total bytes)


# What identifies the bytes behind a path without reading them again: a file rewritten in place changes
# its mtime and ctime (ctime cannot be set from user space), a file swapped by rename changes its inode.
Identity = tuple[int, int, int, int, int]   # (device, inode, size, mtime_ns, ctime_ns)


@record
class Inventory:
    files: list[FileRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    identities: dict[str, Identity] = field(default_factory=dict)   # path -> identity when surveyed
    # path -> (head, SHA-256, size) of the small files the survey read whole: not opened a second time.
    # The head is kept only for an LFS pointer (its oid); any other format is already in the record, and
    # 4 KiB per file was most of the scan's memory at 100,000 files.
    read_whole: dict[str, tuple[bytes, str, int]] = field(default_factory=dict)
    # path -> bytes of small files read whole, up to KEEP_BYTES in all: the scanners read these bytes (the
    # ones hashed) instead of opening the file again; a small repo is then read once.
    contents: dict[str, bytes] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def build(snapshot: Snapshot, options: Options, progress: Progress | None = None) -> Inventory:
    """Survey and hash in one go (for callers that need nothing in between)."""
    with Hashing(survey(snapshot, options), snapshot, options, progress) as hashing:
        return hashing.result()


def survey(snapshot: Snapshot, options: Options) -> Inventory:
    """The safe walk plus each file's size and format from its first bytes; no hashes yet (sha256 "")."""
    root = Path(snapshot.root)
    inv = Inventory()
    allowed = [root.resolve()]
    if snapshot.facts.get("link_root"):
        allowed.append(Path(snapshot.facts["link_root"]).resolve())
    if snapshot.single_file:
        entries = [(snapshot.single_file, os.path.join(root, snapshot.single_file))]
    else:
        entries = list(_walk(root, allowed, options, inv))
    kept = 0
    for rel, path in entries:
        probed = _probe(rel, path, snapshot)
        if probed is not None:
            rec, identity, whole = probed
            inv.files.append(rec)
            if identity:
                inv.identities[rel] = identity
            if whole is not None:
                head, sha256, data = whole
                inv.read_whole[rel] = (head, sha256, len(data))
                if kept + len(data) <= KEEP_BYTES:
                    inv.contents[rel] = data
                    kept += len(data)
        else:
            inv.findings.append(rules.finding("INVENTORY-UNREADABLE", file=rel, evidence="vanished before it was read"))
    return inv


def changed_since(surveyed: Inventory, snapshot: Snapshot) -> list[Finding]:
    """INVENTORY-CHANGED for every file whose bytes may differ from those hashed and scanned.

    Called once every scanner is done: a file replaced, rewritten or removed between the survey and
    now was hashed and analysed as possibly different contents, so neither its hash nor its findings
    can be trusted.
    """
    root = snapshot.root
    out = []
    for rel, before in sorted(surveyed.identities.items()):
        try:
            now: Identity | None = _identity(os.stat(os.path.join(root, rel)))
        except OSError:
            now = None
        if now != before:
            what = "removed" if now is None else _difference(before, now)
            out.append(rules.finding("INVENTORY-CHANGED", file=rel, evidence=f"{what} during the audit"))
    return out


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _difference(before: Identity, now: Identity) -> str:
    if before[:2] != now[:2]:
        return "replaced by another file (inode changed)"
    if before[2] != now[2]:
        return f"resized ({before[2]} -> {now[2]} bytes)"
    return "rewritten in place (modification or change time moved)"


class Hashing:
    """Hashes a surveyed inventory in background threads (hashlib releases the GIL), so scanners can
    run meanwhile; result() waits and returns the final inventory with hashes and per-file findings."""

    def __init__(self, surveyed: Inventory, snapshot: Snapshot, options: Options,
                 progress: Progress | None = None) -> None:
        self._surveyed = surveyed
        self._snapshot = snapshot
        self._progress = progress
        self._total = surveyed.total_bytes
        self._done = 0
        if progress:
            progress(0, self._total)
        pending = [rec for rec in surveyed.files if rec.path not in surveyed.read_whole]
        # No pool (nor its import, ~5 ms with logging) when the survey's reads hashed every file: a small repo.
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[list[FileRecord]]] = []
        if pending:
            from concurrent.futures import ThreadPoolExecutor
            workers = options.workers or os.cpu_count() or 2
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash")
            self._futures = [self._pool.submit(self._hash_batch, batch) for batch in _batches(pending)]
        self._final: Inventory | None = None

    def _hash_batch(self, batch: list[FileRecord]) -> list[FileRecord]:
        return [self._hash_one(rec) for rec in batch]

    def _hash_one(self, probed: FileRecord) -> FileRecord:
        rec = _record(probed.path, os.path.join(self._snapshot.root, probed.path), probed.size, self._snapshot,
                      self._advance if self._progress else None)
        if not rec.error and (rec.size, rec.format) != (probed.size, probed.format):
            rec = replace(rec, error=f"changed during the audit ({probed.format}, {probed.size} bytes -> "
                                     f"{rec.format}, {rec.size} bytes)")
        return rec

    def _from_survey(self, probed: FileRecord) -> FileRecord:
        head, sha256, size = self._surveyed.read_whole[probed.path]
        if self._progress:
            self._advance(size)
        # the survey detected its format from these same bytes
        lfs = probed.format == "lfs-pointer" and not probed.publisher_sha256
        return _with_hash(probed, sha256, _lfs_oid(head) if lfs else probed.publisher_sha256)

    def _advance(self, nbytes: int) -> None:
        assert self._progress is not None
        self._done += nbytes        # only the progress display reads it; a lost update is harmless
        self._progress(self._done, self._total)

    def result(self) -> Inventory:
        if self._final is None:
            final = Inventory(findings=list(self._surveyed.findings))
            hashed = {rec.path: rec for future in self._futures for rec in future.result()}
            final.files = [hashed.get(rec.path) or self._from_survey(rec) for rec in self._surveyed.files]
            for rec in final.files:
                final.findings.extend(_file_findings(rec))
            if not final.files:
                final.findings.append(rules.finding("INVENTORY-EMPTY", evidence=self._snapshot.target))
            self._final = final
        return self._final

    def __enter__(self) -> Hashing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


SMALL_FILE = 1024 * 1024        # files below this are hashed in batches: one task each would cost more than the hash
BATCH_BYTES = 16 * 1024 * 1024


def _batches(files: list[FileRecord]) -> list[list[FileRecord]]:
    """Hashing tasks, largest first so the long ones start early and the cores finish together."""
    batches: list[list[FileRecord]] = []
    small: list[FileRecord] = []
    small_bytes = 0
    for rec in sorted(files, key=lambda rec: -rec.size):
        if rec.size >= SMALL_FILE:
            batches.append([rec])
            continue
        small.append(rec)
        small_bytes += rec.size
        if small_bytes >= BATCH_BYTES or len(small) >= 256:
            batches.append(small)
            small, small_bytes = [], 0
    if small:
        batches.append(small)
    return batches


def _blank(rel: str, size: int, snapshot: Snapshot, *, fmt: str = "unknown", error: str = "") -> FileRecord:
    """A file's record: its name's format and the publisher's hashes, and what reading it told (built in
    one call: replace() costs twice a construction, and the survey makes one record per file)."""
    publisher = snapshot.publisher_hashes.get(rel, {})
    return FileRecord(path=rel, size=size, sha256="", format=fmt, extension_format=extension_format(rel),
                      publisher_sha256=publisher.get("sha256", ""), publisher_git_sha1=publisher.get("git_sha1", ""),
                      error=error)


def _with_hash(rec: FileRecord, sha256: str, publisher_sha256: str) -> FileRecord:
    """`rec` with its SHA-256 (and an LFS pointer's publisher hash), without replace()'s cost."""
    return FileRecord(path=rec.path, size=rec.size, sha256=sha256, format=rec.format,
                      extension_format=rec.extension_format, publisher_sha256=publisher_sha256,
                      publisher_git_sha1=rec.publisher_git_sha1, error=rec.error)


READ_WHOLE = 16 * 1024    # files up to this size are hashed by the survey's one read (no second open)
KEEP_BYTES = 8 * 1024 * 1024   # of those, the first this many bytes in all are kept for the scanners

Probed = tuple[FileRecord, "Identity | None", "tuple[bytes, str, bytes] | None"]   # ..., (head, sha256, data)


def _probe(rel: str, path: str, snapshot: Snapshot) -> Probed | None:
    """The file's record from its first bytes; a small file is read whole and hashed here too."""
    try:
        with open(path, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            data = fh.read(READ_WHOLE if st.st_size <= READ_WHOLE else HEAD)
            whole = len(data) == st.st_size and len(data) <= READ_WHOLE and not fh.read(1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _blank(rel, 0, snapshot, error=exc.strerror or str(exc)), None, None
    head = data[:HEAD]
    rec = _blank(rel, st.st_size, snapshot, fmt=detect(head, st.st_size))
    if not whole:
        return rec, _identity(st), None
    return rec, _identity(st), (head if rec.format == "lfs-pointer" else b"", hashlib.sha256(data).hexdigest(), data)


def walk(root: Path, allowed: list[Path], options: Options, inv: Inventory) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every regular file under root, symlinks checked, in name order."""
    return ((rel, Path(path)) for rel, path in _walk(root, allowed, options, inv))


def _walk(root: Path, allowed: list[Path], options: Options, inv: Inventory) -> Iterator[tuple[str, str]]:
    limit = options.limits.max_files
    count = 0
    stack: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while stack:
        folder, folder_rel, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            inv.findings.append(rules.finding(
                "INVENTORY-UNREADABLE", file=folder_rel or ".", evidence=exc.strerror or str(exc)))
            continue
        subfolders = []
        for entry in entries:
            path = entry.path
            rel = f"{folder_rel}/{entry.name}" if folder_rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                inv.findings.append(rules.finding("INVENTORY-UNREADABLE", file=rel, evidence=exc.strerror or str(exc)))
                continue
            if stat.S_ISLNK(st.st_mode):
                refused = _refused_link(Path(path), rel, allowed)
                if refused:
                    inv.findings.append(refused)
                    continue
            elif stat.S_ISDIR(st.st_mode):
                if entry.name in SKIPPED_DIRS:
                    inv.findings.append(rules.finding("INVENTORY-SKIPPED-VCS", file=rel))
                elif depth + 1 > 64:
                    inv.findings.append(rules.finding("INVENTORY-LIMIT", file=rel, evidence="folder depth > 64"))
                else:
                    subfolders.append((path, rel, depth + 1))
                continue
            elif not stat.S_ISREG(st.st_mode):
                inv.findings.append(rules.finding("INVENTORY-SPECIAL-FILE", file=rel,
                                                  evidence=stat.filemode(st.st_mode)))
                continue
            count += 1
            if count > limit:
                inv.findings.append(rules.finding("INVENTORY-LIMIT", file=rel,
                                                  evidence=f"more than {limit} files; the rest were skipped"))
                return
            yield rel, path
        stack.extend(reversed(subfolders))


def _refused_link(path: Path, rel: str, allowed: list[Path]) -> Finding | None:
    """Why a symlink is not followed (out of the root, dangling, a folder, not a regular file), or None."""
    target = Path(os.path.realpath(path))
    shown = f"{rel} -> {os.readlink(path)}"
    if not any(target == a or a in target.parents for a in allowed):
        return rules.finding("INVENTORY-SYMLINK-ESCAPE", file=rel, evidence=shown)
    if not target.exists():
        return rules.finding("INVENTORY-UNREADABLE", file=rel, evidence=f"dangling symlink: {shown}")
    if target.is_dir():
        return rules.finding("INVENTORY-SYMLINK-DIR", file=rel, evidence=shown)
    if not target.is_file():
        return rules.finding("INVENTORY-SPECIAL-FILE", file=rel, evidence=f"{shown} (not a regular file)")
    return None


def _record(rel: str, path: str, size: int, snapshot: Snapshot,
            on_chunk: Callable[[int], None] | None = None) -> FileRecord:
    base = _blank(rel, size, snapshot)
    known = _hashed_by_source(rel, path, snapshot)
    if known:
        if on_chunk:
            on_chunk(size)
        return replace(base, sha256=known[0], format=detect(known[1], size))
    try:
        with open(path, "rb", buffering=0) as fh:
            head, sha256, read = _hash_read(fh, on_chunk)
    except OSError as exc:
        return replace(base, error=exc.strerror or str(exc))
    if read != size:
        return replace(base, size=read, error=f"size changed while reading ({size} -> {read} bytes)")
    return _finished(base, head, sha256, read)


Hashed = tuple[bytes, str, int]   # (first HEAD bytes, SHA-256, bytes hashed)


def _hash_read(fh: io.FileIO, on_chunk: Callable[[int], None] | None) -> Hashed:
    """SHA-256 of the file, read CHUNK bytes at a time into one buffer. read() never faults (a mapped file cut
    short raises SIGBUS), and on two cores mapping measured 0.78-1.30 s for 8 x 256 MiB against 0.83-0.88 s
    for read(). 1-4 MiB buffers hash alike; with the scanners' Python running meanwhile, 4 MiB (fewer GIL
    hand-offs) took 1.93 s where 1 MiB took 2.35 s (bench/RESULTS.md)."""
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    head = b""
    read = 0
    while n := fh.readinto(buf):
        if not read:
            head = bytes(view[:min(n, HEAD)])
        digest.update(view[:n])
        read += n
        if on_chunk:
            on_chunk(n)
    return head, digest.hexdigest(), read


def _finished(base: FileRecord, head: bytes, sha256: str, size: int) -> FileRecord:
    fmt = detect(head, size)
    publisher = _lfs_oid(head) if fmt == "lfs-pointer" and not base.publisher_sha256 else base.publisher_sha256
    return replace(base, sha256=sha256, format=fmt, publisher_sha256=publisher)


def _hashed_by_source(rel: str, path: str | Path, snapshot: Snapshot) -> tuple[str, bytes] | None:
    """(sha256, head) of a file the source hashed while writing it (the hub downloader), when the file
    on disk is still that one (same device, inode, size, mtime, ctime): no second pass over its bytes."""
    known = (snapshot.facts.get("verified_sha256") or {}).get(rel)
    if not known:
        return None
    try:
        real = Path(os.path.realpath(path))
        if tuple(known[1:]) != _identity(real.stat()):
            return None
        with open(real, "rb") as fh:
            head = fh.read(HEAD)
    except OSError:
        return None
    return str(known[0]), head


def _file_findings(rec: FileRecord) -> Iterator[Finding]:
    if rec.error:
        yield rules.finding("INVENTORY-UNREADABLE", file=rec.path, evidence=rec.error)
        return
    if rec.format == "empty":
        yield rules.finding("INVENTORY-EMPTY-FILE", file=rec.path)
        return
    if rec.format == "lfs-pointer":
        yield rules.finding("INVENTORY-LFS-POINTER", file=rec.path, evidence=f"oid sha256:{rec.publisher_sha256}")
        return
    spec = _extension_spec(rec.path)
    if spec is None or rec.format in spec.get("allowed", ()):
        return
    table = rules.load("formats.yaml")
    evidence = f"extension says {spec['format']}, content is {rec.format}"
    if rec.format in spec.get("disguise", ()) or (
            rec.format in table["dangerous_contents"] and spec["format"] in table["safe_extensions_formats"]):
        yield rules.finding("FORMAT-DISGUISED-EXECUTABLE", file=rec.path, location="byte 0", evidence=evidence)
    else:
        yield rules.finding("FORMAT-EXTENSION-MISMATCH", file=rec.path, location="byte 0", evidence=evidence)


def _extension_spec(rel: str) -> dict | None:
    name = rel.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    suffix = name[dot:].lower() if 0 < dot < len(name) - 1 else ""
    return rules.load("formats.yaml")["extensions"].get(suffix)


def extension_format(rel: str) -> str:
    spec = _extension_spec(rel)
    return spec["format"] if spec else ""


def _lfs_oid(head: bytes) -> str:
    for line in head.decode("ascii", "replace").splitlines():
        if line.startswith("oid sha256:"):
            return line.split(":", 1)[1].strip()
    return ""
