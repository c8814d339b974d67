"""TrueType fonts for the PDF, read and subset with struct (no font library: fontTools takes ~0.15 s to import
and ~0.1-0.5 s a font to parse and subset, more than the rest of a 10k-file report).

A font is embedded as a Type0 / CIDFontType2 font with Identity-H encoding and `/CIDToGIDMap /Identity`: the
codes in the content streams are the font's own glyph ids, so subsetting never renumbers a glyph. The subset
keeps glyph ids 0..max(used) (unused glyphs empty, composite glyphs with their components) and only the
tables a CIDFontType2 program needs; /W carries the advance widths of the glyphs used and the ToUnicode CMap
maps them back to text (pdftotext, copy and paste). Only trusted fonts are read: the DejaVu files shipped in
reports/fonts and a system CJK font.
"""
from __future__ import annotations

import hashlib
import itertools
import mmap
import struct
import sys
from array import array
from bisect import bisect_left
from pathlib import Path

# Tables a CIDFontType2 program is drawn from (PDF 32000 9.9), and name; post without its glyph names (format 3);
# no cmap (the codes are glyph ids) and no layout tables.
_KEEP = ("head", "hhea", "maxp", "OS/2", "cvt ", "fpgm", "prep", "gasp", "name")
_MORE_COMPONENTS, _WORDS, _SCALE, _XY_SCALE, _TWO_BY_TWO = 0x20, 0x1, 0x8, 0x40, 0x80


class FontError(ValueError):
    pass


_U32 = "I" if array("I").itemsize == 4 else "L"     # the array type code of a 32-bit unsigned integer here


def _swap_big_endian(values: array) -> None:
    """Font tables are big-endian: arrays read from (or written to) them are swapped on a little-endian host."""
    if sys.byteorder == "little":
        values.byteswap()


def _u16s(data: bytes, offset: int, count: int) -> array:
    values = array("H", data[offset:offset + 2 * count])
    _swap_big_endian(values)
    return values


def has_outlines(path: str | Path) -> bool:
    """Whether the file (its first face, for a collection) is a TrueType-outline font this module embeds, read
    from its table directory only."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] == b"ttcf":             # a collection: the first face's directory
                fh.seek(struct.unpack(">I", fh.read(4))[0])
                head = fh.read(12)
            count = struct.unpack_from(">H", head, 4)[0]
            tags = {fh.read(16)[:4] for _ in range(count)}
    except (OSError, struct.error):
        return False
    return {b"glyf", b"loca", b"head", b"hhea", b"hmtx", b"maxp", b"cmap"} <= tags


class TrueType:
    """One face of a .ttf or the first face of a .ttc: glyph ids, advance widths, descriptor metrics."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.key, self.path = key, str(path)
        with open(path, "rb") as fh:     # mapped, not read: a report draws from a few hundred of its glyphs
            self.data = data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        base = struct.unpack_from(">I", data, 12)[0] if data[:4] == b"ttcf" else 0
        count = struct.unpack_from(">H", data, base + 4)[0]
        self.tables: dict[str, tuple[int, int]] = {}
        for i in range(count):
            tag, _sum, offset, length = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
            self.tables[tag.decode("latin-1")] = (offset, length)
        for tag in ("head", "hhea", "maxp", "hmtx", "loca", "glyf", "cmap"):
            if tag not in self.tables:
                raise FontError(f"{path}: no {tag} table (not a TrueType-outline font)")
        head = self.table("head")
        self.upm = struct.unpack_from(">H", head, 18)[0]
        self.bbox = [self.scale(v) for v in struct.unpack_from(">hhhh", head, 36)]
        self.long_loca = struct.unpack_from(">h", head, 50)[0] == 1
        hhea = self.table("hhea")
        ascent, descent = struct.unpack_from(">hh", hhea, 4)
        self.ascent, self.descent = self.scale(ascent), self.scale(descent)
        self.glyph_count = struct.unpack_from(">H", self.table("maxp"), 4)[0]
        self.long_metrics = struct.unpack_from(">H", hhea, 34)[0]
        # font units; scaled when a glyph is measured (a page uses a few hundred of a font's thousands)
        self.advances = _u16s(self.table("hmtx"), 0, 2 * self.long_metrics)[::2]
        self.cap_height, self.weight, self.fixed, self.italic = self.ascent, 400, False, 0.0
        if "OS/2" in self.tables:
            os2 = self.table("OS/2")
            self.weight = struct.unpack_from(">H", os2, 4)[0]
            if struct.unpack_from(">H", os2, 0)[0] >= 2 and len(os2) >= 90:
                self.cap_height = self.scale(struct.unpack_from(">h", os2, 88)[0]) or self.ascent
        if "post" in self.tables:
            post = self.table("post")
            self.italic = struct.unpack_from(">i", post, 4)[0] / 65536
            self.fixed = struct.unpack_from(">I", post, 12)[0] != 0
        self.cmap = CMap(self.table("cmap"))
        self.name = _postscript_name(self.table("name")) if "name" in self.tables else ""
        self.name = self.name or Path(path).stem.replace(" ", "")
        self.used: dict[int, int] = {0: 0}         # glyph id -> the code point it draws (ToUnicode)
        self.shown = False                          # selected by a page (Tf): then it must be in the file

    def table(self, tag: str) -> bytes:
        offset, length = self.tables[tag]
        return self.data[offset:offset + length]

    def scale(self, value: int) -> int:
        return round(value * 1000 / self.upm)

    def width(self, gid: int) -> int:
        """The glyph's advance in 1/1000 em (the last long metric applies beyond the table)."""
        return self.scale(self.advances[gid] if gid < len(self.advances) else self.advances[-1])

    # -- the embedded program -----------------------------------------------------------------------
    def _glyph(self, gid: int) -> bytes:
        loca_at, glyf_at = self.tables["loca"][0], self.tables["glyf"][0]
        if self.long_loca:
            start, end = struct.unpack_from(">II", self.data, loca_at + 4 * gid)
        else:
            start, end = (2 * v for v in struct.unpack_from(">HH", self.data, loca_at + 2 * gid))
        return self.data[glyf_at + start:glyf_at + end] if end > start else b""

    def closure(self) -> set[int]:
        """The glyphs used and every component of a composite one among them."""
        todo, seen = list(self.used), set[int]()
        while todo:
            gid = todo.pop()
            if gid in seen or gid >= self.glyph_count:
                continue
            seen.add(gid)
            todo.extend(_components(self._glyph(gid)))
        return seen

    def subset(self) -> bytes:
        """The font program with glyph ids 0..max(used) (the unused ones empty) and the tables _KEEP."""
        keep = sorted(self.closure())
        count = keep[-1] + 1
        pieces, lengths = [], array(_U32, bytes(4 * count))     # a CJK font's glyphs used lie among ~20,000
        for gid in keep:
            glyph = self._glyph(gid)
            pieces.append(glyph + b"\0" * (-len(glyph) % 4))
            lengths[gid] = len(pieces[-1])
        glyf = b"".join(pieces)
        offsets = array(_U32, [0])
        offsets.extend(itertools.accumulate(lengths))
        _swap_big_endian(offsets)
        metrics = min(count, self.long_metrics)
        hmtx = self.table("hmtx")[:4 * metrics] + self.table("hmtx")[
            4 * self.long_metrics:4 * self.long_metrics + 2 * (count - metrics)]
        head = bytearray(self.table("head"))
        struct.pack_into(">I", head, 8, 0)               # checkSumAdjustment, set below
        struct.pack_into(">h", head, 50, 1)              # long loca
        hhea = bytearray(self.table("hhea"))
        struct.pack_into(">H", hhea, 34, metrics)
        maxp = bytearray(self.table("maxp"))
        struct.pack_into(">H", maxp, 4, count)
        tables = {tag: self.table(tag) for tag in _KEEP if tag in self.tables}
        if "post" in self.tables and len(self.table("post")) >= 32:
            tables["post"] = struct.pack(">I", 0x00030000) + self.table("post")[4:32]
        tables.update({"head": bytes(head), "hhea": bytes(hhea), "maxp": bytes(maxp), "hmtx": hmtx,
                       "loca": offsets.tobytes(), "glyf": bytes(glyf)})
        return _sfnt(tables)

    def tag(self) -> str:
        """The six-letter subset tag of the BaseFont name (PDF 32000 9.6.4), from the glyphs used."""
        digest = hashlib.sha256(repr(sorted(self.used)).encode()).digest()
        return "".join(chr(65 + b % 26) for b in digest[:6])

    def widths(self) -> str:
        """/W: runs of consecutive glyph ids with their widths."""
        out, run, last = [], list[int](), -2
        for gid in sorted(self.used):
            if gid != last + 1 and run:
                out.append(f"{last - len(run) + 1} [{' '.join(map(str, run))}]")
                run = []
            run.append(self.width(gid))
            last = gid
        if run:
            out.append(f"{last - len(run) + 1} [{' '.join(map(str, run))}]")
        return "[" + " ".join(out) + "]"

    def to_unicode(self) -> bytes:
        pairs = [(gid, code) for gid, code in sorted(self.used.items()) if code]
        lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
                 "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
                 "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
                 "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
        for i in range(0, len(pairs), 100):
            block = pairs[i:i + 100]
            lines.append(f"{len(block)} beginbfchar")
            lines.extend(f"<{gid:04X}> <{chr(code).encode('utf-16-be').hex().upper()}>" for gid, code in block)
            lines.append("endbfchar")
        lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
        return "\n".join(lines).encode("ascii")

    def flags(self) -> int:
        """Symbolic (4; a CID font's glyphs are not the standard Latin set), fixed pitch (1), ForceBold."""
        return 4 | (1 if self.fixed else 0) | (1 << 18 if self.weight >= 600 else 0)

    def stem_v(self) -> int:
        return 50 + int((self.weight / 65) ** 2)


def _components(glyph: bytes) -> list[int]:
    if len(glyph) < 10 or struct.unpack_from(">h", glyph, 0)[0] >= 0:
        return []
    found, at = [], 10
    while at + 4 <= len(glyph):
        flags, gid = struct.unpack_from(">HH", glyph, at)
        found.append(gid)
        at += 4 + (4 if flags & _WORDS else 2)
        at += 2 if flags & _SCALE else 4 if flags & _XY_SCALE else 8 if flags & _TWO_BY_TWO else 0
        if not flags & _MORE_COMPONENTS:
            break
    return found


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    words = array(_U32, padded)
    _swap_big_endian(words)
    return sum(words) & 0xFFFFFFFF


def _sfnt(tables: dict[str, bytes]) -> bytes:
    tags = sorted(tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, 16 * power, power.bit_length() - 1, 16 * (count - power))
    directory, body = bytearray(), bytearray()
    offset = 12 + 16 * count
    total = 0           # the whole font's checksum: every table starts on 4 bytes, so it is the sum of theirs
    for tag in tags:
        data = tables[tag]
        checksum = _checksum(data)
        total += checksum
        directory += struct.pack(">4sIII", tag.encode("latin-1"), checksum, offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    total += _checksum(header + directory)
    font = bytearray(header + directory + body)
    head_at = struct.unpack_from(">I", directory, 16 * tags.index("head") + 8)[0]
    struct.pack_into(">I", font, head_at + 8, (0xB1B0AFBA - total) & 0xFFFFFFFF)
    return bytes(font)


class CMap:
    """Code point -> glyph id from the best Unicode subtable (format 12, else format 4), looked up by bisection
    and remembered: a CJK font maps ~35,000 code points and a report draws a few hundred."""

    def __init__(self, data: bytes) -> None:
        count = struct.unpack_from(">H", data, 2)[0]
        self.data, self.fmt, self.at, self.known = data, 0, 0, dict[int, int]()
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, 4 + 8 * i)
            fmt = struct.unpack_from(">H", data, offset)[0]
            if (platform, encoding) in ((3, 10), (0, 4), (0, 6)) and fmt == 12:
                self.fmt, self.at = 12, offset
                break
            if (platform, encoding) in ((3, 1), (0, 3), (0, 1), (0, 0)) and fmt == 4 and not self.fmt:
                self.fmt, self.at = 4, offset
        if self.fmt == 12:
            groups = struct.unpack_from(">I", data, self.at + 12)[0]
            rows = array(_U32, data[self.at + 16:self.at + 16 + 12 * groups])
            _swap_big_endian(rows)
            self.starts, self.ends, self.firsts = rows[0::3], rows[1::3], rows[2::3]
        elif self.fmt == 4:
            segs = struct.unpack_from(">H", data, self.at + 6)[0] // 2
            self.ends = _u16s(data, self.at + 14, segs)
            self.starts = _u16s(data, self.at + 16 + 2 * segs, segs)
            self.firsts = _u16s(data, self.at + 16 + 4 * segs, segs)        # idDelta
            self.ranges_at = self.at + 16 + 6 * segs
            self.ranges = _u16s(data, self.ranges_at, segs)
        else:
            raise FontError("no Unicode cmap")

    def get(self, code: int, default: int = 0) -> int:
        gid = self.known.get(code)
        if gid is None:
            gid = self.known[code] = self._find(code)
        return gid or default

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.get(code) != 0

    def _find(self, code: int) -> int:
        i = bisect_left(self.ends, code)
        if i == len(self.ends) or self.starts[i] > code or (self.fmt == 4 and code == 0xFFFF):
            return 0
        if self.fmt == 12:
            return self.firsts[i] + code - self.starts[i]
        delta, offset = self.firsts[i], self.ranges[i]
        if offset == 0:
            return (code + delta) & 0xFFFF
        at = self.ranges_at + 2 * i + offset + 2 * (code - self.starts[i])
        gid = struct.unpack_from(">H", self.data, at)[0] if at + 2 <= len(self.data) else 0
        return (gid + delta) & 0xFFFF if gid else 0


def _postscript_name(data: bytes) -> str:
    count, strings = struct.unpack_from(">HH", data, 2)
    for i in range(count):
        platform, encoding, _lang, name_id, length, offset = struct.unpack_from(">HHHHHH", data, 6 + 12 * i)
        if name_id != 6:
            continue
        raw = data[strings + offset:strings + offset + length]
        text = raw.decode("utf-16-be", "replace") if platform in (0, 3) else raw.decode("latin-1")
        clean = "".join(ch for ch in text if ch.isascii() and (ch.isalnum() or ch in "-_"))
        if clean:
            return clean
    return ""
