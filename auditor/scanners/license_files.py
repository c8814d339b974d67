"""Reading the files that carry license terms: the model card, config.json (the model's kind), license
files in any text format (PDF text extracted, HTML stripped), the card's license_link target."""
from __future__ import annotations

import re
from typing import Any

from auditor import rules
from auditor.model import FileRecord, Finding
from auditor.parsers import card as cardparser
from auditor.parsers import licensetext
from auditor.scanners import ScanContext

NAME = "license"
MAX_LICENSE_FILES = 64            # license-like files read per model
MAX_DEPTH = 2                     # folders below the root searched for license files
MAX_PDF_SECONDS = 30.0


def finding_unverified(file: str, evidence: str) -> Finding:
    return rules.finding("LICENSE-UNVERIFIED", file=file, scanner=NAME, evidence=evidence)


def read_card(ctx: ScanContext, findings: list[Finding]) -> tuple[cardparser.Card, str]:
    rec = next((f for f in ctx.files if "/" not in f.path and f.path.lower() == "readme.md"), None)
    if rec is None:
        return cardparser.Card(), ""
    try:
        text, _ = ctx.read_text(rec)
        return cardparser.parse(text), rec.path
    except (OSError, ValueError, RecursionError) as exc:
        findings.append(finding_unverified(rec.path, f"model card front matter unreadable: {one_line(exc)}"))
        return cardparser.Card(), rec.path


def model_kind(ctx: ScanContext, card: cardparser.Card) -> str:
    rec = next((f for f in ctx.files if f.path == "config.json"), None)
    config: dict[str, Any] = {}
    if rec is not None and rec.size <= cardparser.MAX_CONFIG_BYTES:
        try:
            config = cardparser.read_config(ctx.read_bytes(rec))
        except OSError:
            config = {}
    return cardparser.model_kind(config, card.front)


def license_files(ctx: ScanContext, card: cardparser.Card, findings: list[Finding]) -> list[tuple[FileRecord, str]]:
    """(file, role) of every file that carries license terms, and the card's license_link target."""
    link = card.front.get("license_link")
    target = ""
    if isinstance(link, str) and "://" not in link:
        target = re.sub(r"^(?:\./|/)?(?:blob/[^/]+/)?", "", link.strip())
    found = []
    for rec in ctx.files:
        role = licensetext.file_role(rec.path) if rec.path.count("/") <= MAX_DEPTH else ""
        if rec.path == target:
            role = "model" if role in ("", "license") else role
        if role:
            found.append((rec, role))
    found.sort(key=lambda fr: (fr[0].path.count("/"), fr[0].path))
    if len(found) > MAX_LICENSE_FILES:
        findings.append(finding_unverified("", f"{len(found)} license-like files; only the first "
                                                f"{MAX_LICENSE_FILES} were read"))
        found = found[:MAX_LICENSE_FILES]
    return found


def file_text(ctx: ScanContext, rec: FileRecord) -> tuple[str, str]:
    """The text of a license file (PDF text extracted, HTML stripped) and a problem ('' when none)."""
    if rec.error or rec.format not in ("text", "script", "unknown", "empty", "pdf", "html"):
        return "", f"license file not readable as text (format {rec.format}{', ' + rec.error if rec.error else ''})"
    from auditor.parsers import pdftext  # here: most repos have no license file (~1 ms of start-up)

    if pdftext.is_pdf(ctx.read_bytes(rec, 8)):
        pdf = pdftext.extract(ctx.path(rec), seconds=min(ctx.options.limits.seconds_per_file, MAX_PDF_SECONDS),
                              max_chars=licensetext.MAX_TEXT_CHARS)
        return pdf.text, f"PDF license: {pdf.problem}" if pdf.problem else ""
    text, truncated = ctx.read_text(rec)
    problem = ""
    if truncated or len(text) > licensetext.MAX_TEXT_CHARS:
        limit = min(ctx.options.limits.max_text_bytes, licensetext.MAX_TEXT_CHARS)
        problem = f"longer than {limit:,} characters; only the beginning was read"
    if rec.path.lower().endswith((".html", ".htm")):
        from auditor.parsers import htmltext  # html.parser only for a license shipped as HTML

        text = htmltext.text_of(text)
    return text, problem


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
