"""The PDF's file inventory as a hand-written content stream: one text object and one path per page.

fpdf2's cell() lays out, measures and encodes each cell on its own (four per file: ~3 ms a row); the grid
is regular, so the rows are placed with text operators (Tm, Tf, Tj) and the rule lines drawn as one path.
Text is encoded the way fpdf2 encodes it for an embedded TrueType font: each character through the font's
subset map (`font.subset.pick`, which also puts the glyph in the embedded subset and the ToUnicode map, so
the text stays extractable) and `font.escape_text`; the fonts are registered on the page with the
document's resource catalog. These are fpdf2 internals: pyproject.toml pins the fpdf2 range they were
written against.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from typing import Any

_ROW_SIZE = 6.0          # pt
_ROW_HEIGHT = 3.4        # mm


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


class Grid:
    """Rows of (path, format, size, hash) in `widths` mm columns; a path too long for its column wraps onto
    more lines (never cut). `header()` draws the column heads with fpdf2 after each page break."""

    def __init__(self, pdf: Any, widths: Sequence[float], header: Callable[[], None],
                 fallbacks: Sequence[str] = ()) -> None:
        self.pdf, self.widths, self.header = pdf, tuple(widths), header
        mono = pdf.fonts["dejavumono"]
        # a character the monospace font lacks is drawn in the first fallback that has it
        self.fonts = [mono, *(pdf.fonts[key] for key in fallbacks if key in pdf.fonts)]
        self.encoders = {font.i: _Encoder(font) for font in self.fonts}
        self.glyphs: dict[str, tuple[Any, int]] = {}
        self.k = pdf.k
        self.ascii_room = int(self.widths[0] / (mono.cw[ord("0")] * _ROW_SIZE / 1000 / self.k)) - 1

    # -- text -------------------------------------------------------------------------------------
    def _glyph(self, ch: str) -> tuple[Any, int]:
        """(font that draws ch, its advance in 1/1000 em), remembered per character."""
        known = self.glyphs.get(ch)
        if known is None:
            code = ord(ch)
            font = next((f for f in self.fonts if code in f.cmap), self.fonts[0])
            known = self.glyphs[ch] = (font, font.cw.get(code, 0))
        return known

    def runs(self, text: str) -> list[tuple[Any, str]]:
        """The text cut where the font changes."""
        if text.isascii():
            return [(self.fonts[0], text)]
        return [(font, "".join(chars)) for font, chars in groupby(text, lambda ch: self._glyph(ch)[0])]

    def wrap(self, text: str) -> list[str]:
        """Lines that fit the path column: by character count for ASCII (monospace), measured otherwise."""
        if text.isascii():
            room = self.ascii_room
            return [text[i:i + room] for i in range(0, len(text), room)] or [""]
        limit = (self.widths[0] - 1) * self.k * 1000 / _ROW_SIZE     # in font units (1/1000 em)
        lines, start, used = [], 0, 0
        for i, ch in enumerate(text):
            width = self._glyph(ch)[1]
            if i > start and used + width > limit:
                lines.append(text[start:i])
                start, used = i, 0
            used += width
        return [*lines, text[start:]]

    def _show(self, x: float, y: float, text: str, state: list[int]) -> str:
        """Text operators drawing `text` with its baseline-left at (x, y) pt; state[0] is the font set."""
        ops = [f"1 0 0 1 {x:.2f} {y:.2f} Tm"]
        for font, run in self.runs(text):
            if state[0] != font.i:
                ops.append(f"/F{font.i} {_ROW_SIZE:.2f} Tf")
                state[0] = font.i
                self.pdf._resource_catalog.add(_font_resource(), font.i, self.pdf.page)
            ops.append(f"({run.translate(self.encoders[font.i])}) Tj")
        return " ".join(ops)

    # -- pages ------------------------------------------------------------------------------------
    def draw(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        pdf = self.pdf
        self.header()
        y = pdf.get_y()
        text: list[str] = []
        rules: list[str] = []
        state = [0]
        left = pdf.l_margin
        right = left + sum(self.widths)
        starts = [left + sum(self.widths[:i]) + pdf.c_margin for i in range(len(self.widths))]
        lift = 0.5 * _ROW_HEIGHT + 0.3 * _ROW_SIZE / self.k      # fpdf2's baseline within a cell
        for path, *cells in rows:
            lines = self.wrap(path)
            if y + _ROW_HEIGHT * len(lines) > pdf.page_break_trigger:
                self._flush(text, rules)
                pdf.add_page()
                self.header()
                y, state = pdf.get_y(), [0]
            for n, line in enumerate(lines):
                base = (pdf.h - y - lift) * self.k
                text.append(self._show(starts[0] * self.k, base, line, state))
                if n == 0:
                    text.extend(self._show(x * self.k, base, cell, state) for x, cell in zip(starts[1:], cells,
                                                                                             strict=True))
                y += _ROW_HEIGHT
            bottom = (pdf.h - y) * self.k
            rules.append(f"{left * self.k:.2f} {bottom:.2f} m {right * self.k:.2f} {bottom:.2f} l")
        self._flush(text, rules)
        pdf.set_y(y)

    def _flush(self, text: list[str], rules: list[str]) -> None:
        """One page's rows as one block of the page's content stream."""
        if not text:
            return
        pdf = self.pdf
        line_width = pdf.line_width * self.k
        block = (f"q {line_width:.2f} w 0.816 0.843 0.871 RG\n" + "\n".join(rules) + "\nS\n"
                 "BT 0 g\n" + "\n".join(text) + "\nET Q")
        pdf._out(block.encode("latin-1"))
        text.clear()
        rules.clear()


def _font_resource() -> Any:
    from fpdf.enums import PDFResourceType
    return PDFResourceType.FONT
