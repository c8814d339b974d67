"""One safe walk of the snapshot: every file's size, SHA-256 and real format.

Symlinks are never followed out of the root, special files are never opened, and the format is
decided by the content first and the extension second (rules/formats.yaml).
"""
from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from auditor import rules
from auditor.model import FileRecord, Finding, Options, Snapshot

CHUNK = 8 * 1024 * 1024
HEAD = 4096
SKIPPED_DIRS = {".git", ".hg", ".svn"}

Progress = Callable[[int, int], None]   # (bytes hashed so far, total bytes)


# What identifies the bytes behind a path without reading them again: a file rewritten in place changes
# its mtime and ctime (ctime cannot be set from user space), a file swapped by rename changes its inode.
Identity = tuple[int, int, int, int, int]   # (device, inode, size, mtime_ns, ctime_ns)


@dataclass
class Inventory:
    files: list[FileRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    identities: dict[str, Identity] = field(default_factory=dict)   # path -> identity when surveyed

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def manifest_digest(files: Iterable[FileRecord]) -> str:
    """The model's identity: SHA-256 over `sha256  path` lines sorted by path (sha256sum's format).

    An unreadable file counts as `-`, so a model with one is never the same as the readable original."""
    lines = "".join(f"{r.sha256 or '-'}  {r.path}\n" for r in sorted(files, key=lambda r: r.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


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
        entries = [(snapshot.single_file, root / snapshot.single_file)]
    else:
        entries = list(walk(root, allowed, options, inv))
    for rel, path in entries:
        probed = _probe(rel, path, snapshot)
        if probed is not None:
            rec, identity = probed
            inv.files.append(rec)
            if identity:
                inv.identities[rel] = identity
        else:
            inv.findings.append(rules.finding("INVENTORY-UNREADABLE", file=rel, evidence="vanished before it was read"))
    return inv


def changed_since(surveyed: Inventory, snapshot: Snapshot) -> list[Finding]:
    """INVENTORY-CHANGED for every file whose bytes may differ from those hashed and scanned.

    Called once every scanner is done: a file replaced, rewritten or removed between the survey and
    now was hashed and analysed as possibly different contents, so neither its hash nor its findings
    can be trusted.
    """
    root = Path(snapshot.root)
    out = []
    for rel, before in sorted(surveyed.identities.items()):
        try:
            now: Identity | None = _identity(os.stat(root / rel))
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
        workers = options.workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash")
        if progress:
            progress(0, self._total)
        self._futures = [self._pool.submit(self._hash_batch, batch) for batch in _batches(surveyed.files)]
        self._final: Inventory | None = None

    def _hash_batch(self, batch: list[tuple[int, FileRecord]]) -> list[tuple[int, FileRecord]]:
        return [(index, self._hash_one(rec)) for index, rec in batch]

    def _hash_one(self, probed: FileRecord) -> FileRecord:
        rec = _record(probed.path, Path(self._snapshot.root) / probed.path, probed.size, self._snapshot,
                      self._advance if self._progress else None)
        if not rec.error and (rec.size, rec.format) != (probed.size, probed.format):
            rec = replace(rec, error=f"changed during the audit ({probed.format}, {probed.size} bytes -> "
                                     f"{rec.format}, {rec.size} bytes)")
        return rec

    def _advance(self, nbytes: int) -> None:
        assert self._progress is not None
        self._done += nbytes        # only the progress display reads it; a lost update is harmless
        self._progress(self._done, self._total)

    def result(self) -> Inventory:
        if self._final is None:
            final = Inventory(findings=list(self._surveyed.findings))
            hashed = [pair for future in self._futures for pair in future.result()]
            final.files = [rec for _, rec in sorted(hashed, key=lambda pair: pair[0])]
            for rec in final.files:
                final.findings.extend(_file_findings(rec))
            if not final.files:
                final.findings.append(rules.finding("INVENTORY-EMPTY", evidence=self._snapshot.target))
            self._final = final
        return self._final

    def __enter__(self) -> Hashing:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


SMALL_FILE = 1024 * 1024        # files below this are hashed in batches: one task each would cost more than the hash
BATCH_BYTES = 16 * 1024 * 1024


def _batches(files: list[FileRecord]) -> list[list[tuple[int, FileRecord]]]:
    """Hashing tasks, largest first so the long ones start early and the cores finish together."""
    order = sorted(enumerate(files), key=lambda pair: -pair[1].size)
    batches: list[list[tuple[int, FileRecord]]] = []
    small: list[tuple[int, FileRecord]] = []
    small_bytes = 0
    for index, rec in order:
        if rec.size >= SMALL_FILE:
            batches.append([(index, rec)])
            continue
        small.append((index, rec))
        small_bytes += rec.size
        if small_bytes >= BATCH_BYTES or len(small) >= 256:
            batches.append(small)
            small, small_bytes = [], 0
    if small:
        batches.append(small)
    return batches


def _blank(rel: str, size: int, snapshot: Snapshot) -> FileRecord:
    """What is known of a file before reading it: its name's format and the publisher's hashes."""
    publisher = snapshot.publisher_hashes.get(rel, {})
    return FileRecord(path=rel, size=size, sha256="", format="unknown", extension_format=extension_format(rel),
                      publisher_sha256=publisher.get("sha256", ""), publisher_git_sha1=publisher.get("git_sha1", ""))


def _probe(rel: str, path: Path, snapshot: Snapshot) -> tuple[FileRecord, Identity | None] | None:
    base = _blank(rel, 0, snapshot)
    try:
        with open(path, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            head = fh.read(HEAD)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return replace(base, error=exc.strerror or str(exc)), None
    return replace(base, size=st.st_size, format=detect(head, st.st_size)), _identity(st)


def walk(root: Path, allowed: list[Path], options: Options, inv: Inventory) -> Iterator[tuple[str, Path]]:
    limit = options.limits.max_files
    count = 0
    stack: list[tuple[Path, str, int]] = [(root, "", 0)]
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
            path = Path(entry.path)
            rel = f"{folder_rel}/{entry.name}" if folder_rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                inv.findings.append(rules.finding("INVENTORY-UNREADABLE", file=rel, evidence=exc.strerror or str(exc)))
                continue
            if stat.S_ISLNK(st.st_mode):
                refused = _refused_link(path, rel, allowed)
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


def _record(rel: str, path: Path, size: int, snapshot: Snapshot,
            on_chunk: Callable[[int], None] | None = None) -> FileRecord:
    base = _blank(rel, size, snapshot)
    known = _hashed_by_source(rel, path, snapshot)
    if known:
        if on_chunk:
            on_chunk(size)
        return replace(base, sha256=known[0], format=detect(known[1], size))
    digest = hashlib.sha256()
    buf = bytearray(min(CHUNK, max(size, 1)))
    view = memoryview(buf)
    head = b""
    read = 0
    try:
        with open(path, "rb", buffering=0) as fh:
            while True:
                n = fh.readinto(buf)
                if not n:
                    break
                if not head:
                    head = bytes(view[:HEAD])
                digest.update(view[:n])
                read += n
                if on_chunk:
                    on_chunk(n)
    except OSError as exc:
        return replace(base, error=exc.strerror or str(exc))
    if read != size:
        return replace(base, size=read, error=f"size changed while reading ({size} -> {read} bytes)")
    fmt = detect(head, read)
    if fmt == "lfs-pointer" and not base.publisher_sha256:
        oid = _lfs_oid(head)
        base = replace(base, publisher_sha256=oid)
    return replace(base, sha256=digest.hexdigest(), format=fmt)


def _hashed_by_source(rel: str, path: Path, snapshot: Snapshot) -> tuple[str, bytes] | None:
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


# --- content detection -------------------------------------------------------------------------

_MAGIC: list[tuple[bytes, str]] = [
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"PK\x07\x08", "zip"),
    (b"GGUF", "gguf"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"\x93NUMPY", "numpy"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x7fELF", "elf"),
    (b"\xcf\xfa\xed\xfe", "macho"), (b"\xce\xfa\xed\xfe", "macho"), (b"\xca\xfe\xba\xbe", "macho"),
    (b"\x89PNG\r\n\x1a\n", "image"), (b"\xff\xd8\xff", "image"), (b"GIF8", "image"),
    (b"version https://git-lfs.github.com/spec/", "lfs-pointer"),
    (b"#!", "script"),
]

# Opcodes that can begin a protocol 0/1 pickle, with what must follow them to be plausible.
_PICKLE0_STARTS = (b"(dp", b"(lp", b"(tp", b"(i", b"(c", b"}q", b"]q", b")", b"}(", b"](", b"(S'", b"(V")


def detect(head: bytes, size: int) -> str:
    """The format of a file from its first bytes (HEAD of them) and its size."""
    if size == 0 or not head:
        return "empty"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"MZ":
        return "pe"
    if _is_safetensors(head, size):
        return "safetensors"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if _is_pickle0(head):
        return "pickle"
    if len(head) >= 8 and head[:8] in (b"\x00\x00\x00\x00\x00\x00\x00\x00",) and b"HDF" in head[:1100]:
        return "hdf5"
    if _is_onnx(head):   # before text: a small ONNX file can be valid UTF-8 with no NUL byte
        return "onnx"
    if _is_text(head):
        return "text"
    if head[0] in (0x0A, 0x12, 0x08, 0x1A):
        return "protobuf" if head[0] != 0x0A else "sentencepiece"
    return "unknown"


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{" and (head[9:10] in (b'"', b"}", b" ", b"\n"))


def _is_pickle0(head: bytes) -> bool:
    if head.startswith(_PICKLE0_STARTS):
        return True
    if head[:1] in (b"c", b"i"):   # GLOBAL / INST: "cmodule\nname\n"
        lines = head[1:200].split(b"\n")
        return len(lines) >= 3 and all(_is_dotted(line) for line in lines[:2])
    return False


def _is_dotted(raw: bytes) -> bool:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    sample = head
    for cut in range(4):   # a multi-byte character may be split at the end of the sample
        try:
            sample[: len(sample) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _is_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint) then usually producer_name/opset/graph.
    return len(head) >= 4 and head[0] == 0x08 and head[1] < 0x20 and head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x3A, 0x42)
