"""Tolerant, bounded readers for the containers a model file can hide in. Nothing is extracted to disk.

Loaders accept what strict parsers reject (PyTorch reads a zip whose CRC, flag bits or central
directory disagree with the local headers), so these readers do too: they read every local header
they can reach, cross-check it against the central directory, and report each disagreement as an
`Anomaly` instead of refusing the file. Every read is bounded (`Limits.max_decompressed_bytes`,
`max_compression_ratio`, `max_archive_members`).

    archive = open_archive(path, "zip", limits)       # or read_zip(path, limits)
    for member in archive.members:
        data, truncated = member.read(limit)           # decompressed bytes, at most `limit`
    archive.anomalies                                  # [Anomaly(kind, member, detail, offset)]

Formats: zip (any: PyTorch, TorchScript, npz, .keras), 7z (py7zr), tar, and the single-stream
wrappers gzip, bz2, xz, zstd (zstandard), zlib. lz4 needs the optional `lz4` package.
"""
from __future__ import annotations

import bz2
import functools
import io
import lzma
import mmap
import os
import posixpath
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.model import Limits
from auditor.parsers.decompress import MIN_BOMB_BYTES, ZstdObj, capped
from auditor.record import field, record

DEFAULT_LIMITS = Limits()
EMPTY_MEMBER_FACTOR = 10             # empty zip members allowed per counted member (they cost one header each)
_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_DESCRIPTOR = b"PK\x07\x08"
FLAG_ENCRYPTED = 0x1
FLAG_DESCRIPTOR = 0x8
FLAGS_ODD = 0x20 | 0x40            # patched data / strong encryption: loaders ignore them
SUPPORTED_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


@record(frozen=True)
class Anomaly:
    kind: str          # no-central-directory, name-mismatch, flag-bits, crc-mismatch, hidden-member,
                       # path-traversal, bomb, size-mismatch, duplicate-name, overlap, unsupported-method,
                       # truncated, limit, unreadable, encrypted
    member: str
    detail: str
    offset: int = -1


@record
class Member:
    name: str
    size: int                      # declared uncompressed size (-1 unknown)
    compressed_size: int = -1
    offset: int = -1               # where the member's bytes start in the container (-1 n/a)
    method: int = 0
    flags: int = 0
    crc: int | None = None         # declared CRC-32 (None: the format has none)
    container: str = ""
    alt_names: tuple[str, ...] = ()   # other names the same bytes go by (local header vs directory)
    problems: list[Anomaly] = field(default_factory=list)   # found while reading (truncated, trailing, bomb)
    _reader: Callable[[int], tuple[bytes, bool]] | None = field(default=None, repr=False)
    _head: Callable[[int], bytes] | None = field(default=None, repr=False)

    def read(self, limit: int) -> tuple[bytes, bool]:
        """The member's decompressed bytes (at most `limit`) and whether they were cut."""
        if self._reader is None:
            return b"", False
        return self._reader(limit)

    def head(self, n: int = 64) -> bytes:
        """The first n decompressed bytes (cheap for stored members)."""
        if self._head is not None:
            return self._head(n)
        return self.read(n)[0]


@record
class Archive:
    kind: str
    members: list[Member] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    _close: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._close:
            self._close()
            self._close = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unsafe_name(name: str) -> str:
    """Why a member name could escape an extraction folder ("" when it cannot)."""
    if "\x00" in name:
        return "NUL byte in the name"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "absolute path"
    if ".." in posixpath.normpath(normalized).split("/") or ".." in normalized.split("/"):
        return "parent-directory component"
    return ""


def open_archive(source: str | Path | bytes, kind: str, limits: Limits = DEFAULT_LIMITS) -> Archive:
    """Open a container of `kind` (zip, 7z, tar, gzip, bz2, xz, zstd, zlib, lz4) from a path or bytes."""
    if kind == "zip":
        return read_zip(source, limits)
    if kind == "7z":
        from auditor.parsers.sevenzip import read_7z
        return read_7z(source, limits)
    if kind == "tar":
        return read_tar(source, limits)
    if kind in _STREAMS:
        return read_stream(source, kind, limits)
    raise ValueError(f"not a container kind: {kind}")


# --- zip ---------------------------------------------------------------------------------------

@record
class _Central:
    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    local_offset: int


def read_zip(source: str | Path | bytes, limits: Limits = DEFAULT_LIMITS) -> Archive:
    """Every member reachable from the local headers or the central directory, with the anomalies."""
    close: Callable[[], None] | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf: bytes | mmap.mmap = bytes(source)
    else:
        fh = open(source, "rb")
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            fh.close()
            return Archive("zip", anomalies=[Anomaly("truncated", "", "empty file")])
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

        def close() -> None:
            buf.close()   # type: ignore[union-attr]
            fh.close()
    archive = Archive("zip", _close=close)
    try:
        _walk_zip(buf, archive, limits)
    except Exception:
        archive.close()
        raise
    return archive


def _walk_zip(buf: bytes | mmap.mmap, archive: Archive, limits: Limits) -> None:
    anomalies = archive.anomalies
    try:
        central, central_start = _read_central(buf, anomalies, limits)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:
        anomalies.append(Anomaly("no-central-directory", "", f"unreadable central directory: {exc}", -1))
        central, central_start = [], len(buf)
    by_offset = {c.local_offset: c for c in central}
    seen: dict[int, Member] = {}
    empty = _walk_local_headers(buf, by_offset, bool(central), central_start, seen, anomalies, limits)
    # 2. every central entry whose local header the walk did not reach
    for entry in central:
        if entry.local_offset in seen:
            continue
        if len(seen) - empty >= limits.max_archive_members:
            break
        if buf[entry.local_offset:entry.local_offset + 4] != _LOCAL:
            anomalies.append(Anomaly("truncated", entry.name, "the central directory points at no local header",
                                     entry.local_offset))
            continue
        try:
            member, _ = _local_member(buf, entry.local_offset, entry, anomalies, central_start,
                                         limits.max_compression_ratio)
        except (struct.error, ValueError, IndexError, OverflowError) as exc:
            anomalies.append(Anomaly("truncated", entry.name, f"unreadable local header: {exc}", entry.local_offset))
            continue
        if member is not None:
            seen[entry.local_offset] = member
    if not seen and not central:
        anomalies.append(Anomaly("truncated", "", "no zip member could be read", 0))
    archive.members = [seen[k] for k in sorted(seen)]
    _check_members(archive, limits)


def _walk_local_headers(buf: bytes | mmap.mmap, by_offset: dict[int, _Central], has_central: bool,
                        central_start: int, seen: dict[int, Member], anomalies: list[Anomaly], limits: Limits) -> int:
    """Every local header in a row from byte 0, like a streaming reader; returns how many were empty."""
    pos = 0
    empty = 0      # empty members carry nothing: they count against a larger cap, so padding cannot hide data
    while pos + 30 <= len(buf) and buf[pos:pos + 4] == _LOCAL:
        if len(seen) - empty >= limits.max_archive_members or empty >= EMPTY_MEMBER_FACTOR * limits.max_archive_members:
            anomalies.append(Anomaly("limit", "", f"more than {limits.max_archive_members} members "
                                     f"({empty} of them empty); the rest was not read", pos))
            break
        try:
            member, next_pos = _local_member(buf, pos, by_offset.get(pos), anomalies, central_start,
                                              limits.max_compression_ratio)
        except (struct.error, ValueError, IndexError, OverflowError) as exc:
            anomalies.append(Anomaly("truncated", "", f"unreadable local header: {exc}", pos))
            break
        if member is None:
            break
        seen[pos] = member
        empty += member.compressed_size == 0
        if pos not in by_offset and has_central:
            anomalies.append(Anomaly("hidden-member", member.name,
                                     "local header not listed in the central directory", pos))
        if next_pos <= pos:
            break
        pos = next_pos
    return empty


def _read_central(buf: bytes | mmap.mmap, anomalies: list[Anomaly], limits: Limits) -> tuple[list[_Central], int]:
    size = len(buf)
    tail_start = max(0, size - 65557)
    eocd = buf.rfind(_EOCD, tail_start)
    if eocd < 0 or eocd + 22 > size:
        anomalies.append(Anomaly("no-central-directory", "", "no end-of-central-directory record", -1))
        return [], size
    (_sig, _disk, _cd_disk, _n_disk, n_total, cd_size, cd_offset, _clen) = struct.unpack(
        "<4sHHHHIIH", buf[eocd:eocd + 22])
    if (n_total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and eocd >= 20 \
            and buf[eocd - 20:eocd - 16] == _EOCD64_LOCATOR:
        (z64_offset,) = struct.unpack("<Q", buf[eocd - 12:eocd - 4])
        if buf[z64_offset:z64_offset + 4] == _EOCD64:
            n_total, cd_size, cd_offset = struct.unpack("<QQQ", buf[z64_offset + 32:z64_offset + 56])
    if cd_offset + cd_size > size:
        anomalies.append(Anomaly("no-central-directory", "", "the central directory lies past the end", eocd))
        return [], size
    entries: list[_Central] = []
    pos = cd_offset
    end = cd_offset + cd_size
    while pos + 46 <= end and buf[pos:pos + 4] == _CENTRAL:
        if len(entries) >= EMPTY_MEMBER_FACTOR * limits.max_archive_members:
            anomalies.append(Anomaly("limit", "", f"more than {limits.max_archive_members} directory entries", pos))
            break
        (flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen) = struct.unpack(
            "<HHHHIIIHHH", buf[pos + 8:pos + 34])
        (local_offset,) = struct.unpack("<I", buf[pos + 42:pos + 46])
        name = _decode_name(bytes(buf[pos + 46:pos + 46 + nlen]), flags)
        extra = bytes(buf[pos + 46 + nlen:pos + 46 + nlen + xlen])
        usize, csize, local_offset = _zip64_extra(extra, usize, csize, local_offset)
        entries.append(_Central(name, flags, method, crc, csize, usize, local_offset))
        pos += 46 + nlen + xlen + clen
    if len(entries) != n_total and n_total != 0xFFFF:
        anomalies.append(Anomaly("size-mismatch", "", f"the directory announces {n_total} entries, "
                                 f"holds {len(entries)}", cd_offset))
    return entries, cd_offset


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[pos:pos + 4])
        body = extra[pos + 4:pos + 4 + length]
        if tag == 0x0001:
            values = [struct.unpack("<Q", body[i:i + 8])[0] for i in range(0, len(body) - 7, 8)]
            it = iter(values)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if offset == 0xFFFFFFFF:
                offset = next(it, offset)
        pos += 4 + length
    return usize, csize, offset


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "replace") if flags & 0x800 else raw.decode("cp437")


def _cross_check(entry: _Central, name: str, flags: int, method: int, csize: int, usize: int, crc: int,
                 anomalies: list[Anomaly], pos: int) -> tuple[tuple[str, ...], int, int, int]:
    """Local header against its central directory entry: each disagreement is an anomaly. Returns the
    other name, and the sizes and CRC a loader uses."""
    alt: tuple[str, ...] = ()
    if entry.name != name:
        anomalies.append(Anomaly("name-mismatch", name, f"local header says {name!r}, central directory "
                                 f"says {entry.name!r}", pos))
        alt = (entry.name,)
    if entry.flags != flags:
        anomalies.append(Anomaly("flag-bits", name, f"local flags 0x{flags:04x}, central 0x{entry.flags:04x}",
                                 pos))
    if entry.method != method:
        anomalies.append(Anomaly("size-mismatch", name, f"local method {method}, central {entry.method}", pos))
    if flags & FLAG_DESCRIPTOR or csize == 0 or csize == 0xFFFFFFFF:
        csize, usize = entry.csize, entry.usize
    elif (csize, usize) != (entry.csize, entry.usize):
        anomalies.append(Anomaly("size-mismatch", name, f"local sizes {csize}/{usize}, central "
                                 f"{entry.csize}/{entry.usize}", pos))
    crc = entry.crc if flags & FLAG_DESCRIPTOR else crc
    if not flags & FLAG_DESCRIPTOR and entry.crc != crc:
        anomalies.append(Anomaly("crc-mismatch", name, f"local CRC {crc:08x}, central {entry.crc:08x}", pos))
    return alt, csize, usize, crc


def _local_member(buf: bytes | mmap.mmap, pos: int, entry: _Central | None, anomalies: list[Anomaly],
                  central_start: int, ratio: int = DEFAULT_LIMITS.max_compression_ratio) -> tuple[Member | None, int]:
    (flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack("<HHHHIIIHH", buf[pos + 6:pos + 30])
    name = _decode_name(bytes(buf[pos + 30:pos + 30 + nlen]), flags)
    extra = bytes(buf[pos + 30 + nlen:pos + 30 + nlen + xlen])
    usize, csize, _ = _zip64_extra(extra, usize, csize, 0)
    data_start = pos + 30 + nlen + xlen
    alt: tuple[str, ...] = ()
    if entry is not None:
        alt, csize, usize, crc = _cross_check(entry, name, flags, method, csize, usize, crc, anomalies, pos)
    elif flags & FLAG_DESCRIPTOR and csize == 0:
        # No directory entry to ask: the member ends where the next header begins.
        nxt = [i for i in (buf.find(_DESCRIPTOR, data_start), buf.find(_LOCAL, data_start),
                           buf.find(_CENTRAL, data_start)) if i >= 0]
        end = min(nxt) if nxt else len(buf)
        csize = end - data_start
        if end < len(buf) and buf[end:end + 4] == _DESCRIPTOR:
            crc, csize_d, usize_d = struct.unpack("<III", buf[end + 4:end + 16])
            usize = usize_d
        else:
            usize = -1
    if flags & FLAG_ENCRYPTED:
        anomalies.append(Anomaly("flag-bits", name, "the 'encrypted' bit is set; PyTorch ignores it and loads the "
                                 "member as plain bytes", pos))
    if flags & FLAGS_ODD:
        anomalies.append(Anomaly("flag-bits", name, f"flag bits 0x{flags & FLAGS_ODD:02x} set "
                                 "(patched/strong-encryption); loaders ignore them", pos))
    if method not in SUPPORTED_METHODS:
        anomalies.append(Anomaly("unsupported-method", name, f"compression method {method}", pos))
    if data_start + csize > len(buf):
        anomalies.append(Anomaly("truncated", name, f"member data runs past the end ({csize} bytes at "
                                 f"{data_start})", pos))
        csize = max(0, len(buf) - data_start)
    member = Member(name=name, size=usize, compressed_size=csize, offset=data_start, method=method, flags=flags,
                    crc=crc, container="zip", alt_names=alt)
    member._reader = _zip_reader(buf, data_start, csize, method, ratio, member.problems)
    member._head = _zip_head(buf, data_start, csize, method)
    next_pos = data_start + csize
    if flags & FLAG_DESCRIPTOR:
        if buf[next_pos:next_pos + 4] == _DESCRIPTOR:
            next_pos += 16
        elif buf[next_pos + 12:next_pos + 16] in (_LOCAL, _CENTRAL):
            next_pos += 12
        elif buf[next_pos + 16:next_pos + 20] in (_LOCAL, _CENTRAL):
            next_pos += 16
    return member, next_pos


def _zip_reader(buf: bytes | mmap.mmap, start: int, csize: int, method: int,
                ratio: int = DEFAULT_LIMITS.max_compression_ratio,
                problems: list[Anomaly] | None = None) -> Callable[[int], tuple[bytes, bool]]:
    def read(limit: int) -> tuple[bytes, bool]:
        raw = buf[start:start + csize]
        if method == 0:
            return bytes(raw[:limit]), csize > limit
        make: Callable[[], Any]
        if method == 8:
            make = functools.partial(zlib.decompressobj, -15)
        elif method == 12:
            make = bz2.BZ2Decompressor
        elif method == 14 and len(raw) > 4:
            props_len = struct.unpack("<H", raw[2:4])[0]
            filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, raw[4:4 + props_len])]  # type: ignore[attr-defined]
            raw = raw[4 + props_len:]
            make = functools.partial(lzma.LZMADecompressor, lzma.FORMAT_RAW, filters=filters)
        else:
            raise ValueError(f"unsupported zip compression method {method}")
        return capped(make, bytes(raw), limit, ratio, b"", problems)
    return read


def _zip_head(buf: bytes | mmap.mmap, start: int, csize: int, method: int) -> Callable[[int], bytes]:
    def head(n: int) -> bytes:
        if method == 0:
            return bytes(buf[start:start + min(n, csize)])
        try:
            return _zip_reader(buf, start, min(csize, 1 << 20), method)(n)[0]
        except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError):
            return b""
    return head


def _check_members(archive: Archive, limits: Limits) -> None:
    names: dict[str, int] = {}
    total = 0
    ranges = sorted((m.offset, m.offset + max(m.compressed_size, 0), m.name) for m in archive.members)
    for member in archive.members:
        for name in (member.name, *member.alt_names):
            why = unsafe_name(name)
            if why:
                archive.anomalies.append(Anomaly("path-traversal", name, why, member.offset))
        names[member.name] = names.get(member.name, 0) + 1
        if member.size > 0:
            total += member.size
            if member.compressed_size > 0 and member.size >= MIN_BOMB_BYTES and \
                    member.size / member.compressed_size > limits.max_compression_ratio:
                archive.anomalies.append(Anomaly(
                    "bomb", member.name, f"{member.compressed_size} bytes expand to {member.size} "
                    f"(ratio {member.size // member.compressed_size} > {limits.max_compression_ratio})", member.offset))
    for name, count in names.items():
        if count > 1:
            archive.anomalies.append(Anomaly("duplicate-name", name, f"{count} members share this name"))
    for (_s1, e1, n1), (s2, _e2, n2) in zip(ranges, ranges[1:], strict=False):
        if s2 < e1:
            archive.anomalies.append(Anomaly("overlap", n2, f"its bytes overlap those of {n1!r} "
                                             "(a zip-bomb technique)", s2))
    if total > limits.max_decompressed_bytes:
        archive.anomalies.append(Anomaly("bomb", "", f"members declare {total} bytes in all, more than "
                                         f"{limits.max_decompressed_bytes}"))


def _memory_member(name: str, data: bytes, container: str, declared: int = -1) -> Member:
    member = Member(name=name, size=declared if declared >= 0 else len(data), compressed_size=len(data),
                    container=container)

    def read(limit: int) -> tuple[bytes, bool]:
        return data[:limit], len(data) > limit
    member._reader = read
    member._head = lambda n: data[:n]
    return member


# --- tar ---------------------------------------------------------------------------------------

def read_tar(source: str | Path | bytes, limits: Limits = DEFAULT_LIMITS) -> Archive:
    archive = Archive("tar")
    fileobj = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    total = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:   # type: ignore[call-overload]
            for info in tar:
                if len(archive.members) >= limits.max_archive_members:
                    archive.anomalies.append(Anomaly("limit", "", f"more than {limits.max_archive_members} members"))
                    break
                why = unsafe_name(info.name)
                if why:
                    archive.anomalies.append(Anomaly("path-traversal", info.name, why, info.offset))
                if info.issym() or info.islnk():
                    target = info.linkname
                    if unsafe_name(target) or target.startswith("/"):
                        archive.anomalies.append(Anomaly("path-traversal", info.name,
                                                         f"link to {target!r}", info.offset))
                    continue
                if not info.isfile():
                    continue
                total += info.size
                if total > limits.max_decompressed_bytes:
                    archive.anomalies.append(Anomaly("bomb", info.name, f"members exceed "
                                                     f"{limits.max_decompressed_bytes} bytes"))
                    break
                archive.members.append(_tar_member(fileobj, info))
    except (tarfile.TarError, OSError, EOFError) as exc:
        archive.anomalies.append(Anomaly("unreadable", "", f"{type(exc).__name__}: {exc}"))
    if not isinstance(source, (bytes, bytearray)):
        archive._close = fileobj.close
    return archive


def _tar_member(fileobj: io.BufferedIOBase | io.BytesIO, info: tarfile.TarInfo) -> Member:
    start = info.offset_data
    member = Member(name=info.name, size=info.size, compressed_size=info.size, offset=start, container="tar")

    def read(limit: int) -> tuple[bytes, bool]:
        fileobj.seek(start)
        return fileobj.read(min(limit, info.size)), info.size > limit
    member._reader = read
    return member


# --- single-stream wrappers --------------------------------------------------------------------

def _lz4(raw: bytes, limit: int) -> tuple[bytes, bool]:
    import lz4.frame  # type: ignore[import-not-found]
    with lz4.frame.LZ4FrameFile(io.BytesIO(raw)) as fh:
        out = fh.read(limit + 1)
    return out[:limit], len(out) > limit


_STREAM_MAKERS: dict[str, tuple[Callable[[], Any], bytes]] = {
    "gzip": (functools.partial(zlib.decompressobj, 31), b"\x1f\x8b"),
    "bz2": (bz2.BZ2Decompressor, b"BZh"),
    "xz": (lzma.LZMADecompressor, b"\xfd7zXZ\x00"),
    "zlib": (zlib.decompressobj, b""),
    "zstd": (ZstdObj, b"\x28\xb5\x2f\xfd"),
}


def _stream_reader(kind: str, ratio: int, problems: list[Anomaly]) -> Callable[[bytes, int], tuple[bytes, bool]]:
    if kind == "lz4":
        return _lz4
    if kind not in _STREAM_MAKERS:
        raise ValueError(kind)
    make, magic = _STREAM_MAKERS[kind]
    return lambda raw, limit: capped(make, raw, limit, ratio, magic, problems)


_STREAMS = ("gzip", "bz2", "xz", "zstd", "zlib", "lz4")
STREAM_SUFFIX = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst", "zlib": ".zlib", "lz4": ".lz4"}


def read_stream(source: str | Path | bytes, kind: str, limits: Limits = DEFAULT_LIMITS) -> Archive:
    """A compressed single stream as an archive of one member (named after the file, suffix removed)."""
    if isinstance(source, (bytes, bytearray)):
        raw, name = bytes(source), "stream"
    else:
        raw = Path(source).read_bytes()
        name = Path(source).name
        suffix = STREAM_SUFFIX[kind]
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    archive = Archive(kind)
    member = Member(name=name, size=-1, compressed_size=len(raw), container=kind)
    decode = _stream_reader(kind, limits.max_compression_ratio, member.problems)

    def read(limit: int) -> tuple[bytes, bool]:
        del member.problems[:]
        return decode(raw, limit)
    member._reader = read
    archive.members.append(member)
    return archive
