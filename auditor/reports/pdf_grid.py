"""The PDF's long tables (file inventory, findings) as hand-written content streams: per page, one text object
and one path for the rules.

fpdf2 lays out, measures and encodes each cell on its own (its line breaking re-measures the whole line for
every character added: ~3 ms a cell); these tables are regular, so the rows are placed with text operators
(Tm, Tf, Tj) and the rules drawn as one path. Text is encoded the way fpdf2 encodes it for an embedded
TrueType font: each character through the font's subset map (`font.subset.pick`, which also puts the glyph in
the embedded subset and the ToUnicode map, so the text stays extractable) and `font.escape_text`; the fonts
are registered on the page with the document's resource catalog. These are fpdf2 internals: pyproject.toml
pins the fpdf2 range they were written against.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from typing import Any

_ROW_SIZE = 6.0          # pt, the inventory
_ROW_HEIGHT = 3.4        # mm
_RULE_COLOR = "0.816 0.843 0.871 RG"      # (208, 215, 222)


class _Encoder(dict[int, str]):
    """Code point -> the escaped bytes (as latin-1 text) fpdf2 would write for it in one font."""

    def __init__(self, font: Any) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, code: int) -> str:
        mapped = self.font.subset.pick(code)
        value = "" if mapped is None else self.font.escape_text(chr(mapped))
        self[code] = value
        return value


class Text:
    """One font (with fallbacks for the characters it lacks) at one size: widths, wrapping, text operators."""

    def __init__(self, pdf: Any, font: str, size: float, fallbacks: Sequence[str] = ()) -> None:
        self.pdf, self.size, self.k = pdf, size, pdf.k
        self.fonts = [pdf.fonts[font], *(pdf.fonts[key] for key in fallbacks if key in pdf.fonts and key != font)]
        self.encoders = {f.i: _Encoder(f) for f in self.fonts}
        self.glyphs: dict[str, tuple[Any, int]] = {}
        self.ascii_widths = [self.fonts[0].cw.get(c, 0) for c in range(128)]

    def glyph(self, ch: str) -> tuple[Any, int]:
        """(font that draws ch, its advance in 1/1000 em), remembered per character."""
        known = self.glyphs.get(ch)
        if known is None:
            code = ord(ch)
            font = next((f for f in self.fonts if code in f.cmap), self.fonts[0])
            known = self.glyphs[ch] = (font, font.cw.get(code, 0))
        return known

    def units(self, mm: float) -> float:
        """A width in mm as font units (1/1000 em) at this size."""
        return mm * self.k * 1000 / self.size

    def width(self, text: str) -> float:
        if text.isascii():
            widths = self.ascii_widths
            return sum(widths[ord(c)] for c in text)
        return sum(self.glyph(c)[1] for c in text)

    def cut(self, text: str, room: float) -> list[str]:
        """Lines of at most `room` font units, cut anywhere (a path: every character kept, in order)."""
        lines, start, used = [], 0, 0
        for i, ch in enumerate(text):
            w = self.glyph(ch)[1]
            if i > start and used + w > room:
                lines.append(text[start:i])
                start, used = i, 0
            used += w
        return [*lines, text[start:]]

    def wrap(self, text: str, room: float) -> list[str]:
        """Lines of at most `room` font units, broken at spaces (a word too long is cut); newlines kept."""
        lines: list[str] = []
        space = self.glyph(" ")[1]
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

    def show(self, x: float, y: float, text: str, state: list[Any]) -> str:
        """Text operators drawing `text` with its baseline-left at (x, y) pt; state[0] is the font set."""
        ops = [f"1 0 0 1 {x:.2f} {y:.2f} Tm"]
        runs = [(self.fonts[0], text)] if text.isascii() else \
            [(font, "".join(chars)) for font, chars in groupby(text, lambda ch: self.glyph(ch)[0])]
        for font, run in runs:
            if state[0] != (font.i, self.size):
                ops.append(f"/F{font.i} {self.size:.2f} Tf")
                state[0] = (font.i, self.size)
                self.pdf._resource_catalog.add(_font_resource(), font.i, self.pdf.page)
            ops.append(f"({run.translate(self.encoders[font.i])}) Tj")
        return " ".join(ops)


class Page:
    """What one page adds to its content stream: filled boxes, rule lines, text (drawn in that order)."""

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf
        self.fills: list[str] = []
        self.rules: list[str] = []
        self.text: list[str] = []
        self.state: list[Any] = [None]

    def baseline(self, y: float, height: float, size: float) -> float:
        """fpdf2's baseline for text of `size` pt in a cell of `height` mm at `y`, in pt from the bottom."""
        return (self.pdf.h - y - 0.5 * height - 0.3 * size / self.pdf.k) * self.pdf.k

    def rule(self, x1: float, y1: float, x2: float, y2: float) -> None:
        k, h = self.pdf.k, self.pdf.h
        self.rules.append(f"{x1 * k:.2f} {(h - y1) * k:.2f} m {x2 * k:.2f} {(h - y2) * k:.2f} l")

    def fill(self, x: float, y: float, w: float, height: float, rgb: tuple[int, int, int]) -> None:
        k = self.pdf.k
        color = " ".join(f"{c / 255:.3f}" for c in rgb)
        self.fills.append(f"{color} rg {x * k:.2f} {(self.pdf.h - y - height) * k:.2f} {w * k:.2f} {height * k:.2f} re f")

    def flush(self) -> None:
        if not (self.text or self.rules or self.fills):
            return
        pdf = self.pdf
        block = (["q"] + self.fills + [f"{pdf.line_width * pdf.k:.2f} w {_RULE_COLOR}"] + self.rules
                 + (["S"] if self.rules else []) + ["BT 0 g"] + self.text + ["ET Q"])
        pdf._out("\n".join(block).encode("latin-1"))
        self.fills, self.rules, self.text, self.state = [], [], [], [None]


class Grid:
    """Rows of (path, format, size, hash) in `widths` mm columns, monospace; a path too long for its column
    wraps onto more lines (never cut). `header()` draws the column heads with fpdf2 after each page break."""

    def __init__(self, pdf: Any, widths: Sequence[float], header: Callable[[], None],
                 fallbacks: Sequence[str] = ()) -> None:
        self.pdf, self.widths, self.header = pdf, tuple(widths), header
        self.text = Text(pdf, "dejavumono", _ROW_SIZE, fallbacks)
        self.room = self.text.units(self.widths[0] - 1)
        self.ascii_room = int(self.room / self.text.ascii_widths[ord("0")])

    def wrap(self, path: str) -> list[str]:
        if path.isascii():
            room = self.ascii_room
            return [path[i:i + room] for i in range(0, len(path), room)] or [""]
        return self.text.cut(path, self.room)

    def draw(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        pdf = self.pdf
        self.header()
        y = pdf.get_y()
        page = Page(pdf)
        left = pdf.l_margin
        right = left + sum(self.widths)
        starts = [(left + sum(self.widths[:i]) + pdf.c_margin) * pdf.k for i in range(len(self.widths))]
        show = self.text.show
        for path, *cells in rows:
            lines = self.wrap(path)
            if y + _ROW_HEIGHT * len(lines) > pdf.page_break_trigger:
                page.flush()
                pdf.add_page()
                self.header()
                y = pdf.get_y()
            for n, line in enumerate(lines):
                base = page.baseline(y, _ROW_HEIGHT, _ROW_SIZE)
                page.text.append(show(starts[0], base, line, page.state))
                if n == 0:
                    page.text.extend(show(x, base, cell, page.state) for x, cell in zip(starts[1:], cells, strict=True))
                y += _ROW_HEIGHT
            page.rule(left, y, right, y)
        page.flush()
        pdf.set_y(y)


Cell = str | tuple[str, tuple[int, int, int]]     # text, or (text, rgb) for bold white on that colour, centred


class Table:
    """A bordered table of wrapped text (proportional font), headings repeated after a page break."""

    def __init__(self, pdf: Any, widths: Sequence[float], size: float, fallbacks: Sequence[str] = (),
                 head_fill: tuple[int, int, int] = (240, 242, 245), padding: float = 1.0) -> None:
        self.pdf, self.widths, self.size, self.padding, self.head_fill = pdf, tuple(widths), size, padding, head_fill
        self.regular = Text(pdf, "dejavu", size, fallbacks)
        self.bold = Text(pdf, "dejavuB", size, fallbacks)
        self.line = size * 0.5

    def _lines(self, cell: Cell, width: float, text: Text) -> list[str]:
        body = cell[0] if isinstance(cell, tuple) else cell
        return text.wrap(body, text.units(width - 2 * self.padding))

    def draw(self, headings: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
        pdf = self.pdf
        page = Page(pdf)
        y = pdf.get_y()
        y = self._row(page, y, list(headings), heading=True)
        for row in rows:
            texts = [self.bold if isinstance(c, tuple) else self.regular for c in row]
            lines = [self._lines(c, w, t) for c, w, t in zip(row, self.widths, texts, strict=True)]
            height = max(len(x) for x in lines) * self.line + 2 * self.padding
            if y + height > pdf.page_break_trigger:
                page.flush()
                pdf.add_page()
                y = self._row(page, pdf.get_y(), list(headings), heading=True)
            y = self._cells(page, y, row, lines, texts, height)
        page.flush()
        pdf.set_y(y)

    def _row(self, page: Page, y: float, headings: list[str], heading: bool) -> float:
        lines = [self._lines(h, w, self.bold) for h, w in zip(headings, self.widths, strict=True)]
        height = max(len(x) for x in lines) * self.line + 2 * self.padding
        x = self.pdf.l_margin
        for w in self.widths:
            page.fill(x, y, w, height, self.head_fill)
            x += w
        return self._cells(page, y, headings, lines, [self.bold] * len(headings), height)

    def _cells(self, page: Page, y: float, row: Sequence[Cell], lines: list[list[str]], texts: list[Text],
               height: float) -> float:
        x = self.pdf.l_margin
        for cell, w, cell_lines, text in zip(row, self.widths, lines, texts, strict=True):
            centred = isinstance(cell, tuple)
            if isinstance(cell, tuple):
                page.fill(x, y, w, height, cell[1])
                page.text.append("1 g")
            for n, line in enumerate(cell_lines):
                offset = (w - text.width(line) * self.size / 1000 / self.pdf.k) / 2 if centred else self.padding
                base = page.baseline(y + self.padding + n * self.line, self.line, self.size)
                page.text.append(text.show((x + offset) * self.pdf.k, base, line, page.state))
            if centred:
                page.text.append("0 g")
            page.rule(x, y, x + w, y)
            page.rule(x, y + height, x + w, y + height)
            page.rule(x, y, x, y + height)
            page.rule(x + w, y, x + w, y + height)
            x += w
        return y + height


def _font_resource() -> Any:
    from fpdf.enums import PDFResourceType
    return PDFResourceType.FONT
