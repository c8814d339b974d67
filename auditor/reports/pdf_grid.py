"""The PDF's text and tables as content-stream operators (pdf_doc): per page, one text object and one path for
the rules of a table.

Text is shown in a font's own glyph ids (Identity-H, 2-byte hex codes): each character is looked up once in the
font's cmap, which also records the glyph for the embedded subset and the ToUnicode map, so the text stays
extractable. A character the first font lacks is drawn with the first fallback font that has it.
"""
from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from auditor.reports.pdf_doc import HEIGHT, Document, K
from auditor.reports.pdf_font import TrueType

_ROW_SIZE = 6.0          # pt, the inventory
_ROW_HEIGHT = 3.4        # mm
_RULE_COLOR = "0.816 0.843 0.871 RG"      # (208, 215, 222)
_LINE_WIDTH = 0.2        # mm
_CELL_MARGIN = 1.0       # mm, text from a column's left edge
_HEAD_HEIGHT = 4.0       # mm, the inventory's column heads


_ESCAPES = {0x28: "\\(", 0x29: "\\)", 0x5C: "\\\\", 0x0D: "\\r"}


class _Encoder(dict[int, str]):
    """Code point -> its 2-byte glyph id in one font as the latin-1 text of a literal string: ( ) and \\
    escaped, and CR (a reader would make it LF)."""

    def __init__(self, font: TrueType) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, code: int) -> str:
        gid = self.font.cmap.get(code)
        value = ""                  # no glyph: left out (PDF/A forbids showing .notdef); the JSON has the text
        if gid:
            self.font.used.setdefault(gid, code)
            value = "".join(_ESCAPES.get(b, chr(b)) for b in (gid >> 8, gid & 0xFF))
        self[code] = value
        return value


class _Lookup(dict[str, Any]):
    """char -> fn(char), computed once per character."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, ch: str) -> Any:
        value = self[ch] = self.fn(ch)
        return value


class Text:
    """One font (with fallbacks for the characters it lacks) at one size: widths, wrapping, text operators."""

    def __init__(self, doc: Document, font: str, size: float, fallbacks: Sequence[str] = ()) -> None:
        self.doc, self.size = doc, size
        self.fonts = [doc.fonts[font], *(doc.fonts[key] for key in fallbacks if key in doc.fonts and key != font)]
        self.encoders = {f.key: _Encoder(f) for f in self.fonts}
        self.face = _Lookup(self._face)             # char -> the font that draws it
        self.runs = _Runs(self)                     # code point -> its code, with font changes (show)
        leave, enter = self.runs.leave, self.runs.enter      # fallback to fallback: no stop in the first font
        self.merges = [(leave[f.key] + enter[g.key], "" if f is g else enter[g.key])
                       for f in self.fonts[1:] for g in self.fonts[1:]]
        self.first_op = (self.fonts[0].key, size)
        self.select_first = f"/F{self.fonts[0].key} {size:.2f} Tf "
        self.advance = _Lookup(lambda ch: (font := self.face[ch]).width(font.cmap.get(ord(ch))))
        first = self.encoders[self.fonts[0].key]
        gids = [first.font.cmap.get(c) for c in range(32, 127)]
        self.byte_table = b""           # ASCII in the first font, when its glyph ids are 1..255: see codes()
        if 0 < min(gids) and max(gids) < 256:
            self.byte_table = bytes(32) + bytes(gids) + bytes(129)
            for c in range(32, 127):
                first[c]                # noqa: B018  (records the glyphs for the subset and ToUnicode)

    def _face(self, ch: str) -> TrueType:
        code = ord(ch)
        return next((f for f in self.fonts if code in f.cmap), self.fonts[0])

    def codes(self, text: str) -> str:
        """ASCII text in the first font as the body of a literal string: UTF-16BE is 0 then the character, and
        bytes.translate turns the character into its glyph id (the C way through; str.translate is 3x slower)."""
        if not self.byte_table or not text.isprintable():        # a control character has no glyph
            return text.translate(self.encoders[self.fonts[0].key])
        data = text.encode("utf-16-be").translate(self.byte_table)
        data = data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)").replace(b"\r", b"\\r")
        return data.decode("latin-1")

    def codes_many(self, texts: list[str]) -> list[str]:
        """codes() of many printable-ASCII texts (needs byte_table) in one pass: joined by LF, which the table
        makes 00 00, a pair no character's code has at an even offset (glyph ids are 1..255, an escape never
        ends in 00), so splitting at the first 00 00 from the left finds each LF."""
        data = "\n".join(texts).encode("utf-16-be").translate(self.byte_table)
        data = data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)").replace(b"\r", b"\\r")
        return data.decode("latin-1").split("\x00\x00")

    def units(self, mm: float) -> float:
        """A width in mm as font units (1/1000 em) at this size."""
        return mm * K * 1000 / self.size

    def width(self, text: str) -> float:
        return sum(map(self.advance.__getitem__, text))

    def cut(self, text: str, room: float) -> list[str]:
        """Lines of at most `room` font units, cut anywhere (a path: every character kept, in order)."""
        ends = list(itertools.accumulate(map(self.advance.__getitem__, text)))     # the width up to each end
        if not ends or ends[-1] <= room:
            return [text]
        lines: list[str] = []
        start, used = 0, 0.0
        while True:
            end = bisect.bisect_right(ends, used + room, lo=start + 1)     # at least one character a line
            if end >= len(text):
                return [*lines, text[start:]]
            lines.append(text[start:end])
            start, used = end, ends[end - 1]

    def wrap(self, text: str, room: float) -> list[str]:
        """Lines of at most `room` font units, broken at spaces (a word too long is cut); newlines kept."""
        lines: list[str] = []
        space = self.advance[" "]
        for paragraph in text.split("\n"):
            current, used = "", 0.0
            for word in paragraph.split(" "):
                w = self.width(word)
                if current and used + space + w <= room:
                    current, used = current + " " + word, used + space + w
                    continue
                if current:
                    lines.append(current)
                pieces = self.cut(word, room) if w > room else [word]
                lines.extend(pieces[:-1])
                current, used = pieces[-1], self.width(pieces[-1])
            lines.append(current)
        return lines

    def mm(self, text: str) -> float:
        """The width of `text` in mm."""
        return self.width(text) * self.size / 1000 / K

    def body(self, text: str) -> str:
        """`text` as the body of a literal string in the first font: a character of a fallback font closes the
        string, is shown in its font, and the first font is selected again (_Runs), so the font is the first one
        after it; a character no font has is left out."""
        if text.isascii():
            return self.codes(text)
        body = text.translate(self.runs)
        if " Tf (" in body:             # a fallback font shown: merge its switches with the next one's
            for pair, joined in self.merges:
                body = body.replace(pair, joined)
        return body

    def bodies(self, texts: list[str]) -> list[str]:
        """body() of each text, the ASCII ones encoded together (codes_many)."""
        if not self.byte_table:
            return list(map(self.body, texts))
        plain = [t for t in texts if t.isascii()]
        encoded = self.codes_many(plain)
        if len(encoded) != len(plain):         # a control character among them: one at a time
            encoded = list(map(self.codes, plain))
        if len(plain) == len(texts):
            return encoded
        ascii_bodies = iter(encoded)
        return [next(ascii_bodies) if t.isascii() else self.body(t) for t in texts]

    def show(self, x: float, y: float, text: str, state: list[Any]) -> str:
        """Text operators drawing `text` with its baseline-left at (x, y) pt; state[0] is the font set, the first
        font when it returns."""
        select = ""
        if state[0] != self.first_op:
            select = self.select_first
            self.fonts[0].shown = True
            state[0] = self.first_op
        body = f"({self.body(text)}) Tj"
        return f"1 0 0 1 {x:.2f} {y:.2f} Tm {select}" + body.removeprefix("() Tj ").removesuffix(" () Tj")


def text_for(doc: Document, font: str, size: float, fallbacks: Sequence[str] = ()) -> Text:
    """The document's Text for this font, size and fallbacks, made once (each caches its glyph lookups, and
    a report has a few dozen tables)."""
    key = (font, size, tuple(fallbacks))
    found = doc.texts.get(key)
    if found is None:
        found = doc.texts[key] = Text(doc, font, size, fallbacks)
    return found


class _Runs(dict[int, str]):
    """Code point -> its code in the first font that has it, as part of a literal string in the first font: a
    character of fallback font i closes the string, selects font i, shows it and selects the first font again
    (with i + 1 spaces before that Tf, so that Text.show can tell whose `back to the first` it is: between two
    characters of the same fallback font it is removed with the `to i again` after it, between two fallback
    fonts only the `to the first` is). A character no font has is left out."""

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text
        first = text.fonts[0]
        self.enter = {f.key: f") Tj /F{f.key} {text.size:.2f} Tf (" for f in text.fonts[1:]}
        self.leave = {f.key: f") Tj{' ' * (i + 1)}/F{first.key} {text.size:.2f} Tf (" for i, f in
                      enumerate(text.fonts[1:])}

    def __missing__(self, code: int) -> str:
        text = self.text
        font = next((f for f in text.fonts if code in f.cmap), text.fonts[0])
        value = text.encoders[font.key][code]
        if value and font is not text.fonts[0]:
            font.shown = True
            value = self.enter[font.key] + value + self.leave[font.key]
        self[code] = value
        return value


class Page:
    """What one page adds to its content stream: filled boxes, rule lines, text (drawn in that order)."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.fills: list[str] = []
        self.rules: list[str] = []
        self.text: list[str] = []
        self.state: list[Any] = [None]

    @staticmethod
    def baseline(y: float, height: float, size: float) -> float:
        """The baseline for text of `size` pt centred in a line of `height` mm at `y`, in pt from the bottom."""
        return (HEIGHT - y - 0.5 * height - 0.3 * size / K) * K

    @staticmethod
    def line(x1: float, y1: float, x2: float, y2: float) -> str:
        """The path of a line from (x1, y1) to (x2, y2) mm, for rules()."""
        return f"{x1 * K:.2f} {(HEIGHT - y1) * K:.2f} m {x2 * K:.2f} {(HEIGHT - y2) * K:.2f} l"

    def rule(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.rules.append(self.line(x1, y1, x2, y2))

    def box(self, x: float, y: float, w: float, height: float) -> None:
        self.rules.append(f"{x * K:.2f} {(HEIGHT - y - height) * K:.2f} {w * K:.2f} {height * K:.2f} re")

    def fill(self, x: float, y: float, w: float, height: float, rgb: tuple[int, int, int]) -> None:
        self.fills.append(f"{rgb_op(rgb, 'rg')} {x * K:.2f} {(HEIGHT - y - height) * K:.2f} {w * K:.2f} "
                          f"{height * K:.2f} re f")

    def color(self, rgb: tuple[int, int, int]) -> None:
        self.text.append(rgb_op(rgb, "rg"))

    def flush(self, rules: str = _RULE_COLOR) -> None:
        if not (self.text or self.rules or self.fills):
            return
        block = (["q"] + self.fills + [f"{_LINE_WIDTH * K:.2f} w {rules}"] + self.rules
                 + (["S"] if self.rules else []) + ["BT 0 g"] + self.text + ["ET Q"])
        self.doc.out("\n".join(block))
        self.fills, self.rules, self.text, self.state = [], [], [], [None]


def rgb_op(rgb: tuple[int, int, int], op: str) -> str:
    return " ".join(f"{c / 255:.3f}" for c in rgb) + f" {op}"


class Grid:
    """Rows of (path, format, size, hash) in `widths` mm columns, monospace; a path too long for its column
    wraps onto more lines (never cut). The column heads are drawn again after each page break."""

    def __init__(self, doc: Document, widths: Sequence[float], heads: Sequence[str], head_fill: tuple[int, int, int],
                 fallbacks: Sequence[str] = ()) -> None:
        self.doc, self.widths, self.heads, self.head_fill = doc, tuple(widths), tuple(heads), head_fill
        self.text = text_for(doc, "mono", _ROW_SIZE, fallbacks)
        self.bold = text_for(doc, "bold", 7, fallbacks)
        self.room = self.text.units(self.widths[0] - 1)
        self.mono = {self.text.advance["0"]}
        self.mono_room = int(self.room / self.text.advance["0"])
        self.starts = [(doc.left + sum(self.widths[:i]) + _CELL_MARGIN) * K for i in range(len(self.widths))]
        self.moves = [round(b - a, 2) for a, b in itertools.pairwise(self.starts)]
        self.places: dict[float, _Places] = {}     # by the y of a page's first line
        self.cell_ops = [f") Tj {dx:.2f} 0 Td (" for dx in self.moves]
        self.back = f") Tj {-sum(self.moves):.2f} {-_ROW_HEIGHT * K:.3f} Td ("    # last column -> next line
        self.down = f") Tj 0 {-_ROW_HEIGHT * K:.3f} Td ("                          # a wrapped path's next line

    def wrap(self, path: str) -> list[str]:
        """The path's lines: as many characters a line as fit when all are as wide as a digit (ASCII and most
        scripts in the monospace font), else cut at the widths of the fallback font's glyphs."""
        room = self.mono_room
        if path.isascii() or set(map(self.text.advance.__getitem__, path)) == self.mono:
            return [path] if len(path) <= room else [path[i:i + room] for i in range(0, len(path), room)]
        return self.text.cut(path, self.room)

    def header(self, page: Page, y: float) -> float:
        left = self.doc.left
        page.fill(left, y, sum(self.widths), _HEAD_HEIGHT, self.head_fill)
        x = left
        base = page.baseline(y, _HEAD_HEIGHT, 7)
        for w, head in zip(self.widths, self.heads, strict=True):
            page.text.append(self.bold.show((x + _CELL_MARGIN) * K, base, head, page.state))
            x += w
        page.rule(left, y + _HEAD_HEIGHT, x, y + _HEAD_HEIGHT)
        return y + _HEAD_HEIGHT

    def draw(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """The rows, a page's strings encoded together (Text.bodies): a row is one absolute Tm, then relative
        moves (Td) from column to column and back down to a wrapped path's next lines. Whatever depends on a
        line's place on the page is formatted once per place (_Places), not once per row."""
        doc, wrap = self.doc, self.wrap
        if doc.y + _HEAD_HEIGHT + _ROW_HEIGHT > doc.page_break_trigger:     # not even the heads and a row
            doc.add_page()
        page, places, ops, texts = self._page(doc.y)
        k = 0                                   # the page's lines used
        for path, *cells in rows:
            lines = wrap(path)
            while k + len(lines) > places.capacity:
                if k:                           # the row on the next page
                    self._flush(page, ops, texts)
                    doc.add_page()
                    page, places, ops, texts = self._page(doc.y)
                    k = 0
                    continue
                head = places.capacity          # a path longer than a page goes on over the next ones
                k = self._row(places, ops, texts, lines[:head], cells, k)
                page.rules.append(places[k].rule)
                lines, cells = lines[head:], [""] * len(cells)
            k = self._row(places, ops, texts, lines, cells, k)
            page.rules.append(places[k].rule)
        self._flush(page, ops, texts)
        doc.y = places.y(k)

    def _row(self, places: _Places, ops: list[str], texts: list[str], lines: list[str], cells: Sequence[str],
             k: int) -> int:
        """A row's operators from line k of the page, and its strings; the line after it."""
        ops.append(places[k].start)
        ops += self.cell_ops
        texts.append(lines[0])
        texts += cells
        if len(lines) > 1:
            ops.append(self.back)
            ops += [self.down] * (len(lines) - 2)
            texts += lines[1:]
        return k + len(lines)

    def _page(self, y: float) -> tuple[Page, _Places, list[str], list[str]]:
        """A page's grid from `y` down, its column heads drawn."""
        page = Page(self.doc)
        top = self.header(page, y)
        places = self.places.get(top)
        if places is None:
            places = self.places[top] = _Places(self, top)
        return page, places, [], []

    def _flush(self, page: Page, ops: list[str], texts: list[str]) -> None:
        if texts:                       # the page's first row selected the first font (_Places)
            self.text.fonts[0].shown = True
            encoded = self.text.bodies(texts)
            page.text.append("".join(itertools.chain.from_iterable(zip(ops, encoded, strict=True))) + ") Tj")
        page.flush()


class _Place:
    __slots__ = ("start", "rule")

    def __init__(self, start: str, rule: str) -> None:
        self.start, self.rule = start, rule


class _Places(dict[int, _Place]):
    """Line k of a grid page whose first line is at `top` mm: the operators starting a row there (the first
    row selects the font, the others close the string before) and the rule under the line before it."""

    def __init__(self, grid: Grid, top: float) -> None:
        super().__init__()
        self.top = top
        self.capacity = max(1, int((grid.doc.page_break_trigger - top) / _ROW_HEIGHT + 1e-9))
        self.left, self.right = grid.doc.left, grid.doc.left + sum(grid.widths)
        self.tm = f"1 0 0 1 {grid.starts[0]:.2f} "
        self.select = f"/F{grid.text.fonts[0].key} {grid.text.size:.2f} Tf "

    def y(self, k: int) -> float:
        return self.top + k * _ROW_HEIGHT

    def __missing__(self, k: int) -> _Place:
        y = self.y(k)
        base = f"{self.tm}{Page.baseline(y, _ROW_HEIGHT, _ROW_SIZE):.2f} Tm "
        start = f"\n{base}{self.select}(" if k == 0 else f") Tj\n{base}("
        place = self[k] = _Place(start, Page.line(self.left, y, self.right, y))
        return place


Cell = str | tuple[str, tuple[int, int, int]]     # text, or (text, rgb) for bold white on that colour, centred


class Table:
    """A bordered table of wrapped text (proportional font), headings repeated after a page break; without
    headings, a key/value table (the first column bold on the heading fill)."""

    def __init__(self, doc: Document, widths: Sequence[float], size: float, fallbacks: Sequence[str] = (),
                 head_fill: tuple[int, int, int] = (240, 242, 245), padding: float = 1.0) -> None:
        self.doc, self.widths, self.size, self.padding, self.head_fill = doc, tuple(widths), size, padding, head_fill
        self.regular = text_for(doc, "regular", size, fallbacks)
        self.bold = text_for(doc, "bold", size, fallbacks)
        self.line = size * 0.5

    def _lines(self, cell: Cell, width: float, text: Text) -> list[str]:
        body = cell[0] if isinstance(cell, tuple) else cell
        return text.wrap(body, text.units(width - 2 * self.padding))

    def draw(self, headings: Sequence[str] | None, rows: Iterable[Sequence[Cell]]) -> None:
        doc = self.doc
        page = Page(doc)
        y = self._row(page, doc.y, list(headings)) if headings else doc.y
        for row in rows:
            texts = [self.bold if isinstance(c, tuple) or (i == 0 and not headings) else self.regular
                     for i, c in enumerate(row)]
            lines = [self._lines(c, w, t) for c, w, t in zip(row, self.widths, texts, strict=True)]
            height = max(len(x) for x in lines) * self.line + 2 * self.padding
            if y + height > doc.page_break_trigger:
                page.flush()
                doc.add_page()
                y = self._row(page, doc.y, list(headings)) if headings else doc.y
            if not headings:
                page.fill(doc.left, y, self.widths[0], height, self.head_fill)
            y = self._cells(page, y, row, lines, texts, height)
        page.flush()
        doc.y = y

    def _row(self, page: Page, y: float, headings: list[str]) -> float:
        lines = [self._lines(h, w, self.bold) for h, w in zip(headings, self.widths, strict=True)]
        height = max(len(x) for x in lines) * self.line + 2 * self.padding
        page.fill(self.doc.left, y, sum(self.widths), height, self.head_fill)
        return self._cells(page, y, headings, lines, [self.bold] * len(headings), height)

    def _cells(self, page: Page, y: float, row: Sequence[Cell], lines: list[list[str]], texts: list[Text],
               height: float) -> float:
        x = self.doc.left
        for cell, w, cell_lines, text in zip(row, self.widths, lines, texts, strict=True):
            centred = isinstance(cell, tuple)
            top = y + self.padding
            if isinstance(cell, tuple):         # centred both ways
                page.fill(x, y, w, height, cell[1])
                page.text.append("1 g")
                top = y + (height - len(cell_lines) * self.line) / 2
            for n, line in enumerate(cell_lines):
                offset = (w - text.mm(line)) / 2 if centred else self.padding
                base = page.baseline(top + n * self.line, self.line, self.size)
                page.text.append(text.show((x + offset) * K, base, line, page.state))
            if centred:
                page.text.append("0 g")
            page.box(x, y, w, height)
            x += w
        return y + height
