"""Bounded, streaming decompression of hostile single streams (deflate, gzip, zlib, bz2, xz, zstd).

`drain` feeds a zlib-like decompressor and stops at `cap` output bytes; it reports a stream that ends
before its end marker (truncated) and bytes after the end that are not another stream of the same
kind (trailing data). `capped` adds the ratio cap: no input expands past `ratio` times its size
(or MIN_BOMB_BYTES) before it counts as a bomb.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

MIN_BOMB_BYTES = 16 * 1024 * 1024   # a high ratio on a small member is not worth a finding



class StreamProblem(ValueError):
    """A compressed stream that is truncated or followed by other bytes, when no problem list is kept."""


def ratio_cap(compressed: int, ratio: int) -> int:
    """The most bytes `compressed` bytes may expand to before they count as a decompression bomb."""
    return max(MIN_BOMB_BYTES, compressed * ratio)


def capped(make: Callable[[], Any], raw: bytes, limit: int, ratio: int, magic: bytes,
           problems: list[Any] | None) -> tuple[bytes, bool]:
    """Decompress at most min(limit, ratio cap) bytes, streaming; a stream that ends early or is followed
    by other bytes, and a cut by the ratio cap, go to `problems` (or raise when there is no list)."""
    cap = min(limit, ratio_cap(len(raw), ratio))
    out, cut, issue = drain(make, raw, cap, magic)
    if cut and cap < limit:
        issue = issue or (f"bomb: {len(raw)} compressed bytes expand past {cap} (ratio over {ratio}); "
                          "only the first part was read")
    if issue:
        if problems is None:
            if issue.startswith("bomb"):
                return out, True
            raise StreamProblem(issue)
        from auditor.parsers.archive import Anomaly
        problems.append(Anomaly(issue.split(":", 1)[0], "", issue))
    return out, cut


def drain(make: Callable[[], Any], raw: bytes, cap: int, magic: bytes = b"") -> tuple[bytes, bool, str]:
    """(output up to `cap` bytes, whether more would come, the problem: "" or "truncated: ..." or
    "trailing-data: ..."). Concatenated streams that begin with `magic` are read on (gzip, bz2, xz allow it)."""
    out: list[bytes] = []
    room = cap + 1
    dec = make()
    data = raw
    while True:
        before = len(data)
        piece = dec.decompress(data, room)
        data = getattr(dec, "unconsumed_tail", b"")
        out.append(piece)
        room -= len(piece)
        if room <= 0:
            return b"".join(out)[:cap], True, ""
        if dec.eof:
            rest = dec.unused_data
            if magic and rest.startswith(magic):
                dec, data = make(), rest
                continue
            if rest.strip(b"\0"):
                return b"".join(out), False, f"trailing-data: {len(rest)} bytes follow the end of the stream"
            return b"".join(out), False, ""
        stuck = not piece and (getattr(dec, "needs_input", False) or (not data) or len(data) == before)
        if stuck:
            return b"".join(out), False, "truncated: the compressed stream ends before its end marker"


class ZstdObj:
    """zstandard's decompressobj behind the zlib-like interface `drain` uses (input fed in small pieces,
    since its decompress() has no output bound)."""
    PIECE = 4096

    def __init__(self) -> None:
        import zstandard
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self.unconsumed_tail = b""

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)

    def decompress(self, data: bytes, room: int) -> bytes:
        out = [self._pending]
        size = len(self._pending)
        while data and size < room and not self._obj.eof:
            piece = self._obj.decompress(data[:self.PIECE])
            data = data[self.PIECE:]
            out.append(piece)
            size += len(piece)
        joined = b"".join(out)
        self._pending = joined[room:]
        self.unconsumed_tail = data
        return joined[:room]
