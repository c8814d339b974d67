"""The text of an HTML document (a license agreement shipped as a web page): tags dropped, entities
decoded, block elements turned into line breaks. Pure reading: nothing is fetched, no script runs."""
from __future__ import annotations

import html
import html.parser

_BLOCKS = frozenset(("p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr"))


class _TextOnly(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")


def text_of(document: str) -> str:
    parser = _TextOnly()
    parser.feed(document)
    parser.close()
    return html.unescape("".join(parser.parts))
