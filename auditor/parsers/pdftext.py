"""Text of a PDF (a license agreement shipped as PDF), page by page, within byte, page and time limits.

Uses pypdf (the `pdf` extra). Pure reading: the PDF is parsed, never rendered or run. The result
says what could not be read (`problem`) instead of raising: the caller reports it as a finding.
"""
from __future__ import annotations

import time
from pathlib import Path

from auditor.record import record

MAX_PDF_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 80
MAX_PDF_SECONDS = 30.0
MAX_PDF_CHARS = 1_000_000
PAGE_BREAK = "\f"


@record(frozen=True)
class PdfText:
    pages: tuple[str, ...]
    problem: str = ""           # "" when every page was read

    @property
    def text(self) -> str:
        """Pages joined by form feeds (a quote's page is the number of form feeds before it + 1)."""
        return PAGE_BREAK.join(self.pages)


def is_pdf(head: bytes) -> bool:
    return head.startswith(b"%PDF-")


def extract(path: Path, *, max_bytes: int = MAX_PDF_BYTES, max_pages: int = MAX_PDF_PAGES,
            seconds: float = MAX_PDF_SECONDS, max_chars: int = MAX_PDF_CHARS) -> PdfText:
    try:
        import pypdf
    except ImportError:
        return PdfText((), "not read: the PDF reader is not installed (pip install 'auditor[pdf]')")
    size = path.stat().st_size
    if size > max_bytes:
        return PdfText((), f"not read: {size:,} bytes is over the {max_bytes:,}-byte limit for a PDF")
    deadline = time.monotonic() + seconds
    pages: list[str] = []
    try:
        reader = pypdf.PdfReader(str(path), strict=False)
        total = len(reader.pages)
        for number, page in enumerate(reader.pages):
            if number >= max_pages or time.monotonic() > deadline:
                return PdfText(tuple(pages), f"only the first {number} of {total} pages were read")
            pages.append(page.extract_text() or "")
            if sum(map(len, pages)) > max_chars:
                return PdfText(tuple(pages), f"text longer than {max_chars:,} characters; only the beginning was read")
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is "not read"
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return PdfText(tuple(pages), f"unparseable ({type(exc).__name__}: {detail})")
    if not any(p.strip() for p in pages):
        return PdfText(tuple(pages), f"no extractable text in {total} page(s) (an image-only PDF?)")
    return PdfText(tuple(pages))
