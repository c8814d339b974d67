"""A PDF/A-3B file written directly: A4 pages of hand-written content streams, embedded subset TrueType fonts
(pdf_font), bookmarks, associated files, XMP metadata and its Info dictionary, the sRGB output intent.

Layout code works in mm from the top-left corner (`Document.y` is the cursor); the writer yields the file in
pieces, so an attachment is copied into the output from wherever it is without being held whole.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from isal import isal_zlib

from auditor.record import field, record
from auditor.reports.pdf_font import TrueType

K = 72 / 25.4                   # pt per mm
WIDTH, HEIGHT = 210.0, 297.0    # A4, mm
_CONTENT_LEVEL = 1            # ISA-L's level of pages and fonts, as the attachments' (pdf_attach.LEVEL)


def text_string(value: str) -> str:
    """A PDF text string: UTF-16BE with its byte order mark, in hex (any character, nothing to escape)."""
    return "<FEFF" + value.encode("utf-16-be", "surrogatepass").hex().upper() + ">"


def escape(text: str) -> str:
    """XML character data (the XMP packet)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pdf_date(when: datetime) -> str:
    stamp = when.strftime("D:%Y%m%d%H%M%S")
    offset = when.utcoffset()
    if not offset:
        return f"({stamp}Z)"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"({stamp}{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}')"


def _name(value: str) -> str:
    """A PDF name (a MIME type: application/json -> application#2Fjson)."""
    return "/" + "".join(ch if ch.isalnum() or ch in "+-._" else f"#{ord(ch):02X}" for ch in value)


@record
class Attachment:
    """An associated file whose bytes are a zlib stream already (`chunks` yields them once)."""
    name: str
    mime: str
    description: str
    stored: int                 # bytes of the zlib stream
    size: int                   # bytes before compression
    chunks: Iterable[bytes]


@record
class Info:
    title: str
    author: str
    subject: str
    keywords: str
    creator: str
    created: datetime
    modified: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    lang: str = "en"


class Document:
    """Pages as lists of content-stream operators; the cursor `y` and the margins in mm."""

    def __init__(self, fonts: Iterable[TrueType], icc_profile: bytes) -> None:
        self.fonts = {f.key: f for f in fonts}
        self.icc = icc_profile
        self.pages: list[list[str]] = []
        self.bookmarks: list[tuple[str, int, float]] = []
        self.texts: dict[tuple[str, float, tuple[str, ...]], Any] = {}     # pdf_grid.text_for's
        self.left = self.top = self.right = 15.0
        self.bottom = 16.0
        self.y = self.top

    @property
    def page_break_trigger(self) -> float:
        return HEIGHT - self.bottom

    @property
    def content_width(self) -> float:
        return WIDTH - self.left - self.right

    def add_page(self) -> None:
        self.pages.append([])
        self.y = self.top

    def out(self, operators: str) -> None:
        self.pages[-1].append(operators)

    def bookmark(self, title: str) -> None:
        self.bookmarks.append((title, len(self.pages) - 1, self.y))

    def add_font(self, font: TrueType) -> None:
        self.fonts[font.key] = font

    def output(self, info: Info, attachments: Iterable[Attachment],
               footer: Callable[[int, int], str] | None = None) -> Iterator[bytes]:
        return _Writer(self, info, attachments, footer).pieces()


class _Writer:
    def __init__(self, doc: Document, info: Info, attachments: Iterable[Attachment],
                 footer: Callable[[int, int], str] | None) -> None:
        self.doc, self.info, self.footer = doc, info, footer
        self.attachments = attachments      # taken one at a time, after the pages and fonts are out
        self.offsets: dict[int, int] = {}
        self.position = 0
        self.count = 0

    def reserve(self) -> int:
        self.count += 1
        return self.count

    def obj(self, number: int, body: str | bytes) -> bytes:
        data = body.encode("latin-1") if isinstance(body, str) else body
        self.offsets[number] = self.position
        piece = f"{number} 0 obj\n".encode() + data + b"\nendobj\n"
        self.position += len(piece)
        return piece

    def stream(self, number: int, entries: str, data: bytes, deflate: bool = True) -> bytes:
        if deflate:
            data = isal_zlib.compress(data, _CONTENT_LEVEL)
            entries += " /Filter /FlateDecode"
        return self.obj(number, f"<< {entries} /Length {len(data)} >>\nstream\n".encode("latin-1")
                        + data + b"\nendstream")

    def raw(self, data: bytes) -> bytes:
        self.position += len(data)
        return data

    def pieces(self) -> Iterator[bytes]:
        doc = self.doc
        yield self.raw(b"%PDF-1.7\n%\xe9\xeb\xf1\xbf\n")
        catalog, pages, metadata, intent = (self.reserve() for _ in range(4))
        fonts = [f for f in doc.fonts.values() if f.shown]
        font_refs = {f.key: self.reserve() for f in fonts}
        resources = "<< /Font << " + " ".join(f"/F{key} {n} 0 R" for key, n in font_refs.items()) + " >> >>"
        page_numbers = []
        total = len(doc.pages)
        for index, ops in enumerate(doc.pages):
            page, content = self.reserve(), self.reserve()
            page_numbers.append(page)
            if self.footer:
                ops = [*ops, self.footer(index + 1, total)]
            yield self.stream(content, "", "\n".join(ops).encode("latin-1"))
            yield self.obj(page, f"<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 {WIDTH * K:.2f} {HEIGHT * K:.2f}] "
                                 f"/Resources {resources} /Contents {content} 0 R >>")
        yield self.obj(pages, f"<< /Type /Pages /Count {total} /Kids [{' '.join(f'{n} 0 R' for n in page_numbers)}] >>")
        for font in fonts:
            yield from self.font(font, font_refs[font.key])
        files: list[tuple[str, int]] = []          # (name, file spec object) of each attachment written
        for attached in self.attachments:
            files.append((attached.name, self.reserve()))
            yield from self.attachment(attached, files[-1][1])
        outline = yield from self.outline(page_numbers)
        yield self.stream(intent, "/N 3 /Alternate /DeviceRGB", self.doc.icc)
        yield self.stream(metadata, "/Type /Metadata /Subtype /XML", self.xmp(), deflate=False)
        names = " ".join(f"{text_string(name)} {n} 0 R" for name, n in files)
        yield self.obj(catalog, f"<< /Type /Catalog /Pages {pages} 0 R /Metadata {metadata} 0 R "
                                f"/Lang {text_string(self.info.lang)} "
                                f"/OutputIntents [<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB) "
                                f"/OutputCondition (IEC 61966-2-1:1999) /RegistryName (http://www.color.org) "
                                f"/Info (sRGB2014 \\(v2\\)) /DestOutputProfile {intent} 0 R >>] "
                                + (f"/Outlines {outline} 0 R /PageMode /UseOutlines " if outline else "")
                                + f"/AF [{' '.join(f'{n} 0 R' for _, n in files)}] "
                                f"/Names << /EmbeddedFiles << /Names [{names}] >> >> >>")
        info = self.reserve()
        yield self.obj(info, self.info_dict())
        yield self.raw(self.xref(catalog, info))

    def font(self, font: TrueType, type0: int) -> Iterator[bytes]:
        cid, descriptor, program, unicode = (self.reserve() for _ in range(4))
        name = f"{font.tag()}+{font.name}"
        yield self.obj(type0, f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
                              f"/DescendantFonts [{cid} 0 R] /ToUnicode {unicode} 0 R >>")
        yield self.obj(cid, f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
                            f"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                            f"/FontDescriptor {descriptor} 0 R /CIDToGIDMap /Identity /DW {font.width(0)} "
                            f"/W {font.widths()} >>")
        yield self.obj(descriptor, f"<< /Type /FontDescriptor /FontName /{name} /Flags {font.flags()} "
                                   f"/FontBBox [{' '.join(map(str, font.bbox))}] /ItalicAngle {font.italic:g} "
                                   f"/Ascent {font.ascent} /Descent {font.descent} /CapHeight {font.cap_height} "
                                   f"/StemV {font.stem_v()} /MissingWidth {font.width(0)} /FontFile2 {program} 0 R >>")
        data = font.subset()
        yield self.stream(program, f"/Length1 {len(data)}", data)
        yield self.stream(unicode, "", font.to_unicode())

    def attachment(self, attached: Attachment, spec: int) -> Iterator[bytes]:
        stream = self.reserve()
        modified = pdf_date(self.info.created)
        head = (f"<< /Type /EmbeddedFile /Subtype {_name(attached.mime)} /Filter /FlateDecode "
                f"/Params << /Size {attached.size} /ModDate {modified} >> /Length {attached.stored} >>\nstream\n")
        self.offsets[stream] = self.position
        yield self.raw(f"{stream} 0 obj\n".encode() + head.encode("latin-1"))
        written = 0
        for chunk in attached.chunks:
            written += len(chunk)
            yield self.raw(chunk)
        if written != attached.stored:
            raise ValueError(f"attachment {attached.name}: {written} bytes, {attached.stored} announced")
        yield self.raw(b"\nendstream\nendobj\n")
        name = text_string(attached.name)
        yield self.obj(spec, f"<< /Type /Filespec /F {name} /UF {name} /Desc {text_string(attached.description)} "
                             f"/AFRelationship /Data /EF << /F {stream} 0 R /UF {stream} 0 R >> >>")

    def outline(self, page_numbers: list[int]) -> Generator[bytes, None, int]:
        marks = self.doc.bookmarks
        if not marks:
            return 0
        root = self.reserve()
        numbers = [self.reserve() for _ in marks]
        for i, (title, page, y) in enumerate(marks):
            links = (f"/Prev {numbers[i - 1]} 0 R " if i else "") + (
                f"/Next {numbers[i + 1]} 0 R " if i + 1 < len(numbers) else "")
            yield self.obj(numbers[i], f"<< /Title {text_string(title)} /Parent {root} 0 R {links}"
                                       f"/Dest [{page_numbers[page]} 0 R /XYZ 0 {(HEIGHT - y) * K:.2f} null] >>")
        yield self.obj(root, f"<< /Type /Outlines /First {numbers[0]} 0 R /Last {numbers[-1]} 0 R /Count {len(marks)} >>")
        return root

    def xmp(self) -> bytes:
        i = self.info
        e = escape
        return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
  <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
    <rdf:Description rdf:about=""
        xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
        xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
      <pdfaid:part>3</pdfaid:part>
      <pdfaid:conformance>B</pdfaid:conformance>
      <xmp:CreatorTool>{e(i.creator)}</xmp:CreatorTool>
      <xmp:CreateDate>{i.created.isoformat()}</xmp:CreateDate>
      <xmp:ModifyDate>{i.modified.isoformat()}</xmp:ModifyDate>
      <xmp:MetadataDate>{i.modified.isoformat()}</xmp:MetadataDate>
      <pdf:Producer>auditor</pdf:Producer>
      <pdf:Keywords>{e(i.keywords)}</pdf:Keywords>
      <dc:format>application/pdf</dc:format>
      <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{e(i.title)}</rdf:li></rdf:Alt></dc:title>
      <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{e(i.subject)}</rdf:li></rdf:Alt></dc:description>
      <dc:creator><rdf:Seq><rdf:li>{e(i.author)}</rdf:li></rdf:Seq></dc:creator>
    </rdf:Description>
  </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()

    def info_dict(self) -> str:
        i = self.info
        fields = {"Title": i.title, "Author": i.author, "Subject": i.subject, "Keywords": i.keywords,
                  "Creator": i.creator, "Producer": "auditor"}
        entries = " ".join(f"/{k} {text_string(v)}" for k, v in fields.items() if v)
        return f"<< {entries} /CreationDate {pdf_date(i.created)} /ModDate {pdf_date(i.modified)} >>"

    def xref(self, catalog: int, info: int) -> bytes:
        start = self.position
        rows = ["xref", f"0 {self.count + 1}", "0000000000 65535 f "]
        rows += [f"{self.offsets[n]:010d} 00000 n " for n in range(1, self.count + 1)]
        ident = hashlib.md5(f"{self.info.title}{self.info.created}{self.info.modified}{start}".encode(),
                            usedforsecurity=False).hexdigest().upper()
        rows += ["trailer", f"<< /Size {self.count + 1} /Root {catalog} 0 R /Info {info} 0 R /ID [<{ident}><{ident}>] >>",
                 "startxref", str(start), "%%EOF", ""]
        return "\n".join(rows).encode("ascii")
