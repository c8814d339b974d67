"""The PDF a compliance team files (fpdf2, PDF/A-3B, with the DejaVu fonts shipped in reports/fonts).

Page one is the decision: model, revision, verdict, the "no direct connection" claims with their
status, and who/when/which policy. Then lineage and origin, license obligations, findings and the file
inventory with hashes. The JSON result and the CycloneDX BOM ride along as associated files, so the PDF
is the evidence and carries its machine-readable form. Text is drawn as text (no markup is interpreted).
"""
from __future__ import annotations

import functools
import logging
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditor.model import AuditResult, ClaimStatus, Finding, Severity
from auditor.reports import view

EXTENSION = ".pdf"
# A person reads the PDF; beyond these the PDF says how many were left out (the attached JSON has them all).
MAX_FINDINGS = 300
MAX_FILES = 10_000
_ATTACHMENT_LEVEL = 1         # zlib level of the attachments: a quarter of the size, at ~100 MB/s

_STATUS_COLOR = {ClaimStatus.SUPPORTED: (26, 127, 55), ClaimStatus.REFUTED: (207, 34, 46),
                 ClaimStatus.NOT_ASSESSED: (87, 96, 106)}
_DECISION_COLOR = {"pass": (26, 127, 55), "warn": (154, 103, 0), "fail": (207, 34, 46)}
_SEVERITY_COLOR = {Severity.CRITICAL: (164, 14, 38), Severity.HIGH: (207, 34, 46), Severity.MEDIUM: (154, 103, 0),
                   Severity.LOW: (9, 105, 218), Severity.INFO: (87, 96, 106)}
_GREY = (87, 96, 106)
_RED = (207, 34, 46)
PAGE_ONE_REASONS = 6
# CJK-capable fonts fpdf2 falls back to for characters DejaVu lacks (Debian package in the comment).
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",      # fonts-noto-cjk
             "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",              # fonts-wqy-microhei
             "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",                # fonts-wqy-zenhei
             "/usr/share/fonts/truetype/arphic/uming.ttc")                  # fonts-arphic-uming


@functools.cache
def cjk_font() -> str:
    return next((p for p in CJK_FONTS if Path(p).is_file()), "")


def drawable(chars: set[str]) -> set[int]:
    """The code points of `chars` the PDF draws as themselves: above ASCII, and not one that view.clean()
    shows as <U+XXXX>."""
    return {ord(ch) for ch in chars if ord(ch) > 0x7E and view.clean(ch) == ch}


def uncovered(wanted: set[int], fonts: Iterable[Any]) -> list[str]:
    """The characters none of the (fpdf2) fonts has a glyph for; their cmaps are read when they are added."""
    for font in fonts:
        wanted = {c for c in wanted if c not in font.cmap}
        if not wanted:
            return []
    return sorted(chr(c) for c in wanted)


def deflated(pieces: Iterable[str]) -> tuple[bytes, int, set[str]]:
    """(zlib stream, size before, the non-ASCII characters) of a text rendered piece by piece: the text
    itself is never held whole."""
    z = zlib.compressobj(_ATTACHMENT_LEVEL)
    out: list[bytes] = []
    size, chars = 0, set[str]()
    for piece in pieces:
        if not piece.isascii():
            chars.update(piece)
        data = piece.encode("utf-8")
        size += len(data)
        out.append(z.compress(data))
    out.append(z.flush())
    return b"".join(out), size, chars


def glyphs_finding(missing: list[str]) -> Finding:
    from auditor import rules
    sample = "".join(missing[:20])
    return rules.finding("REPORT-GLYPHS-MISSING", file="", location="this PDF",
                         evidence=f"{len(missing)} character(s) without a font, e.g. {sample}")
_HEAD_FILL = (240, 242, 245)


def _t(value: Any, limit: int = 0, keep_newlines: bool = True) -> str:
    return view.clean(value, limit, keep_newlines=keep_newlines)


class _Report:
    def __init__(self, result: AuditResult) -> None:
        from fpdf import FPDF

        from auditor.rules import data_dir
        self.result = result
        fonts = data_dir("reports") / "fonts"
        pdf = FPDF(format="A4", enforce_compliance="PDF/A-3B")
        pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        pdf.add_font("DejaVuMono", "", str(fonts / "DejaVuSansMono.ttf"))
        from auditor.reports import json_report
        self.json = deflated(json_report.iter_render(result))     # rendered once: attachment and coverage
        wanted = drawable(self.json[2])
        used = [pdf.fonts["dejavu"]]
        self.fallbacks = ["dejavu"]
        beyond = uncovered(wanted, used)
        if cjk_font() and beyond:       # the big CJK font only for what DejaVu cannot draw, and only those
            pdf.add_font("CJK", "", cjk_font(), unicode_range=[ord(ch) for ch in beyond])
            pdf.set_fallback_fonts(["CJK"], exact_match=False)
            used.append(pdf.fonts["cjk"])
            self.fallbacks.append("cjk")
        self.missing = uncovered(wanted, used)
        pdf.set_auto_page_break(True, margin=16)
        pdf.set_margins(15, 15, 15)
        model = _t(view.model_name(result), 200)
        pdf.set_title(f"auditor report: {model}")
        pdf.set_author("auditor")
        pdf.set_subject(f"Model supply-chain audit: {result.verdict.decision.upper()}")
        pdf.set_keywords(f"auditor, model supply chain, {result.verdict.decision}")
        pdf.set_creator(f"auditor {_t(result.tool_version)}")
        pdf.set_lang("en")
        pdf.set_creation_date(view.started(result))
        footer = f"{model} · {result.verdict.decision.upper()} · auditor {_t(result.tool_version)}"

        def draw_footer() -> None:
            pdf.set_y(-12)
            pdf.set_font("DejaVu", "", 7)
            pdf.set_text_color(*_GREY)
            pdf.cell(0, 5, f"{footer} · page {pdf.page_no()}/{{nb}}", align="C")
        pdf.footer = draw_footer  # type: ignore[method-assign]
        self.pdf = pdf

    # -- building blocks -------------------------------------------------------------------------
    def heading(self, text: str, size: float = 13) -> None:
        pdf = self.pdf
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", size)
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, size * 0.55, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def para(self, text: str, size: float = 9, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        pdf = self.pdf
        pdf.set_font("DejaVu", "", size)
        pdf.set_text_color(*color)
        pdf.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")

    def table(self, headings: list[str] | None, rows: list[list[Any]], widths: tuple[float, ...], size: float = 8,
              mono: tuple[int, ...] = ()) -> None:
        """rows: cells are str or (str, rgb) for a bold white-on-colour cell; `mono` columns in the monospace
        font; no headings = a key/value table with the keys in bold."""
        from fpdf.enums import WrapMode
        from fpdf.fonts import FontFace
        pdf = self.pdf
        pdf.set_font("DejaVu", "", size)
        pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(208, 215, 222)
        pdf.set_fill_color(255, 255, 255)
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=size * 0.5, padding=1,
                       headings_style=FontFace(emphasis="BOLD", fill_color=_HEAD_FILL),
                       wrapmode=WrapMode.WORD, first_row_as_headings=bool(headings)) as table:
            if headings:
                head = table.row()
                for h in headings:
                    head.cell(h)
            for row in rows:
                r = table.row()
                for i, cell in enumerate(row):
                    if isinstance(cell, tuple):
                        r.cell(cell[0], align="C",
                               style=FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=cell[1]))
                    elif i == 0 and not headings:
                        r.cell(str(cell), style=FontFace(emphasis="BOLD", fill_color=_HEAD_FILL))
                    elif i in mono:
                        r.cell(str(cell), style=FontFace(family="DejaVuMono", size_pt=size - 1))
                    else:
                        r.cell(str(cell))
        pdf.ln(2)

    # -- pages -----------------------------------------------------------------------------------
    def section(self, title: str, size: float = 13) -> None:
        """A heading that is also a bookmark; sections flow on from the previous one."""
        pdf = self.pdf
        if pdf.get_y() + 30 > pdf.page_break_trigger:
            pdf.add_page()
        pdf.start_section(title, level=0)
        self.heading(title, size)

    def decision_page(self) -> None:
        """Page one, always whole: the decision, the model's identity, license and origin, every claim, the
        sign-off block. Long values are wrapped and capped here; the sections after it have them in full."""
        r, pdf = self.result, self.pdf
        pdf.add_page()
        pdf.start_section("Decision", level=0)
        self.para("MODEL SUPPLY-CHAIN AUDIT · DECISION RECORD", 8, _GREY)
        self.heading(_t(view.model_name(r), 160), 15)
        decision = r.verdict.decision
        color = _DECISION_COLOR.get(decision, _DECISION_COLOR["fail"])
        pdf.set_fill_color(*color)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("DejaVu", "B", 18)
        pdf.cell(40, 11, decision.upper(), align="C", fill=True)
        pdf.set_fill_color(255, 255, 255)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "", 9)
        waived = len(view.waived(r))
        pdf.set_x(pdf.l_margin + 45)
        pdf.multi_cell(0, 5.5, f"Policy: {_t(r.verdict.policy, 80)}\n{view.counts_line(r)}"
                       + (f"; {waived} waived" if waived else ""), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        reasons = list(r.verdict.reasons)
        for reason in reasons[:PAGE_ONE_REASONS]:
            self.para(f"• {_t(reason, 160, keep_newlines=False)}", 8)
        if len(reasons) > PAGE_ONE_REASONS:
            self.para(f"• and {len(reasons) - PAGE_ONE_REASONS} more (Findings section)", 8, _GREY)
        if self.missing:
            self.para(f"Note: {len(self.missing)} character(s) in this result have no font on this machine and "
                      "are drawn as boxes (install fonts-noto-cjk); the attached JSON has the exact text. "
                      f"Examples: {''.join(self.missing[:12])}", 8, _RED)
        pdf.ln(1)
        rev = view.revision(r)
        from auditor.reports.cyclonedx import manifest_digest
        facts = [
            ["Model", _t(view.model_name(r), 200) + (f" @ {_t(rev)}" if rev else " (no commit recorded)")],
            ["License", _t(view.license_label(r), 200)],
            ["Publisher", _t(view.publisher_line(r), 200)],
            ["Effective origin", _t(view.effective_origin_line(r), 200)],
            ["Source", _t(r.snapshot.kind) + (f" via {_t(r.snapshot.endpoint, 120)}" if r.snapshot.endpoint else "")
             + f"; {len(r.files)} files; manifest SHA-256 {manifest_digest(r)}"],
            ["Audited", f"{_t(r.started_at)} by auditor {_t(r.tool_version)} (automated), policy {_t(r.verdict.policy, 80)}"],
        ]
        self.table(None, facts, (30, 150), 7.5)
        self.heading("No direct connection: claims", 11)
        rows = [[_t(c.title, 120), (c.status.value.upper(), _STATUS_COLOR[c.status]), _claim_reason(c)]
                for c in r.claims]
        self.table(["Claim", "Status", "Reason"], rows, (58, 24, 98), 7)
        self.para("A claim is supported only when the check behind it ran and no finding contradicts it; "
                  "'not assessed' means the check did not run or could not verify. The JSON result and the "
                  "CycloneDX BOM are attached to this file.", 6.5, _GREY)
        self.sign_off()

    def sign_off(self) -> None:
        pdf = self.pdf
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 8)
        pdf.cell(0, 5, "Review and sign-off (filed copy)", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 8)
        pdf.set_draw_color(120, 120, 120)
        for label, width in (("Reviewer", 70), ("Date", 35), ("Decision / signature", 75)):
            pdf.cell(width, 9, f"{label}:", border=1)
        pdf.ln(11)

    def lineage_page(self) -> None:
        r = self.result
        self.pdf.add_page()
        self.section("Lineage and origin")
        sig = view.signature(r)
        self.table(None, [
            ["Target", _t(view.shareable_path(r.target))],
            ["Hosts contacted", _t(", ".join(r.snapshot.hosts_contacted)) or "none (nothing fetched)"],
            ["Publisher", _t(view.publisher_line(r))],
            ["Effective origin", _t(view.effective_origin_line(r))],
            ["Signature", _t(sig.get("status") or view.NOT_ASSESSED)
             + (f": {_t(sig.get('detail'), 300)}" if sig.get("detail") else "")],
        ], (32, 148), 8.5)
        chain = view.lineage(r)
        if chain:
            self.table(["Depth", "Model", "Relation", "Origin", "License"],
                       [[str(e.depth), _t(e.repo_id) + (f"\n{_t(e.commit)}" if e.commit else ""),
                         _t(e.relation or "?"),
                         _t(view.origin_line({"org": e.org, "entity": e.entity, "country": e.country})),
                         _t(e.license or e.error or "?")] for e in chain], (12, 62, 22, 48, 36))
        else:
            self.para("No base model declared.")
        self.section("License and obligations")
        if not view.license_facts(r):
            self.para("Not assessed: the license check did not run.", 9, _GREY)
            return
        law, venue = view.law_and_venue(r)
        self.table(None, [["Model license", _t(view.license_label(r))], ["Governing law", _t(law)],
                          ["Venue", _t(venue)]], (32, 148), 8.5)
        obligations = view.obligations(r)
        if obligations:
            self.table(["Term", "Obligation", "Source"],
                       [[_t(o.get("term")), _t(o.get("summary"), 600), _t(o.get("source") or o.get("from") or "")]
                        for o in obligations], (32, 110, 38))
        else:
            self.para("No obligations recorded.")

    def findings_page(self) -> None:
        r = self.result
        findings = list(r.findings) + ([glyphs_finding(self.missing)] if self.missing else [])
        issues = view.issues(findings)
        self.section(f"Findings ({len(issues)} issues, {len(findings)} findings)")
        if not issues:
            self.para("No findings.")
            return
        from auditor.reports.pdf_grid import Cell, Table
        rows: list[list[Cell]] = []
        for issue in issues[:MAX_FINDINGS]:
            f = issue.first
            what = _t(f.title, 300) + "".join(f"\n{_t(e, 300)}" for e in issue.evidence[:5])
            if len(issue.evidence) > 5:
                what += f"\n… and {len(issue.evidence) - 5} more"
            if f.waived:
                what += f"\nWAIVED: {_t(f.waiver, 300)}"
            places = "; ".join(_t(loc, 80) for loc in issue.locations[:8])
            where = _t(f.file or "the model", 300) + (f"\n{places}" if places else "")
            rows.append([(f.severity.label.upper(), _SEVERITY_COLOR[f.severity]), _t(f.rule), where, what])
        self.pdf.set_draw_color(208, 215, 222)
        Table(self.pdf, (18, 46, 44, 72), 7.5, self.fallbacks, _HEAD_FILL).draw(
            ["Severity", "Rule", "Where", "Finding"], rows)
        self.pdf.ln(2)
        if len(issues) > MAX_FINDINGS:
            self.para(f"{len(issues) - MAX_FINDINGS} more issues are in the attached JSON result.", 8, _GREY)

    def files_page(self) -> None:
        r = self.result
        self.section(f"File inventory ({len(r.files)})")
        self.file_grid(sorted(r.files, key=lambda f: f.path)[:MAX_FILES])
        if len(r.files) > MAX_FILES:
            self.para(f"{len(r.files) - MAX_FILES} more files are in the attached JSON result.", 8, _GREY)

    def file_grid(self, files: list[Any]) -> None:
        """One row per file in the monospace font, drawn by pdf_grid (fpdf2's cells are far too slow for
        thousands of rows); a long path wraps onto more lines, never cut, so two folders never look the same."""
        from auditor.reports.pdf_grid import Grid
        pdf = self.pdf
        widths = (64, 19, 14, 83)     # 64 hex digits at 6 pt need 81.5 mm
        pdf.set_draw_color(208, 215, 222)
        pdf.set_text_color(0, 0, 0)

        def header() -> None:
            pdf.set_font("DejaVu", "B", 7)
            pdf.set_fill_color(*_HEAD_FILL)
            for w, h in zip(widths, ("Path", "Format", "Size", "SHA-256"), strict=True):
                pdf.cell(w, 4.0, h, border="B", fill=True)
            pdf.ln()
            pdf.set_fill_color(255, 255, 255)
        rows = ((_t(f.path, keep_newlines=False), _t(f.format, 14), view.human_size(f.size),
                 f.sha256 or _t(f.error or "unreadable", 60)) for f in files)
        Grid(pdf, widths, header, self.fallbacks).draw(rows)
        pdf.ln(2)

    def attach(self) -> None:
        from auditor.reports import cyclonedx
        when = view.started(self.result)
        bom = deflated(cyclonedx.iter_render(self.result))
        for (data, size, _), name, mime, desc in (
                (self.json, "auditor-result.json", "application/json",
                 "The canonical auditor result (auditor.report/v1)"),
                (bom, "bom.cdx.json", "application/vnd.cyclonedx+json",
                 "CycloneDX 1.6 ML-BOM with the no-direct-connection declarations")):
            attached = self.pdf.embed_file(bytes=data, basename=name, mime_type=mime, desc=desc,
                                           associated_file_relationship="Data", modification_date=when)
            _already_deflated(attached, len(data), size)

    def build(self) -> bytes:
        self.decision_page()
        self.lineage_page()
        self.findings_page()
        self.files_page()
        self.attach()
        pdf = self.pdf
        return with_info(bytes(pdf.output()), {"Title": pdf.title, "Author": pdf.author, "Subject": pdf.subject,
                                               "Keywords": pdf.keywords, "Creator": pdf.creator})


def _pdf_text(value: str) -> str:
    return "<FEFF" + value.encode("utf-16-be").hex().upper() + ">"


def _pdf_date(xmp_date: str) -> str:
    """2026-12-01T20:56:55+00:00 -> (D:20261201205655+00'00')"""
    import re
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", xmp_date)
    if not m:
        return ""
    zone = m.group(7) or "Z"
    tz = "Z" if zone == "Z" else f"{zone[:3]}'{zone[4:]}'"
    return f"(D:{''.join(m.groups()[:6])}{tz})"


def with_info(data: bytes, fields: dict[str, Any]) -> bytes:
    """Append a document Info dictionary that says what the XMP metadata says (fpdf2 writes only the XMP
    under PDF/A): an incremental update, which PDF/A-3 allows; the dates are the XMP's own."""
    import re
    tail = data[-2048:]
    root = re.search(rb"/Root (\d+ \d+ R)", tail)
    size = re.search(rb"/Size (\d+)", tail)
    ident = re.search(rb"/ID (\[<[0-9A-Fa-f]+><[0-9A-Fa-f]+>\])", tail)
    start = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", tail)
    if not (root and size and start):
        return data
    entries = [f"/{k} {_pdf_text(str(v))}" for k, v in fields.items() if v]
    for key, name in (("CreateDate", "CreationDate"), ("ModifyDate", "ModDate")):
        found = re.search(rb'xmp:' + key.encode() + rb'="([^"]+)"', data)
        date = _pdf_date(found.group(1).decode("ascii", "replace")) if found else ""
        if date:
            entries.append(f"/{name} {date}")
    number = int(size.group(1))
    body = data if data.endswith(b"\n") else data + b"\n"
    offset = len(body)
    obj = f"{number} 0 obj\n<<\n" + "\n".join(entries) + "\n>>\nendobj\n"
    xref_at = offset + len(obj.encode("ascii"))
    trailer = (f"xref\n{number} 1\n{offset:010d} 00000 n \ntrailer\n<<\n/Size {number + 1}\n"
               f"/Root {root.group(1).decode()}\n/Info {number} 0 R\n"
               + (f"/ID {ident.group(1).decode()}\n" if ident else "")
               + f"/Prev {start.group(1).decode()}\n>>\nstartxref\n{xref_at}\n%%EOF\n")
    return body + obj.encode("ascii") + trailer.encode("ascii")


def _already_deflated(attached: Any, stored: int, size: int) -> None:
    """Mark an embedded file whose bytes are a zlib stream already (fpdf2 2.8 internals: an EmbeddedFile is a
    PDFContentStream with `filter`, and `params` holds /Size, which is the size before compression)."""
    from fpdf.syntax import Name
    attached.filter = Name("FlateDecode")
    attached.params = attached.params.replace(f"/Size {stored}", f"/Size {size}", 1)


def _claim_reason(claim: Any) -> str:
    reason = _t(claim.reason, 170, keep_newlines=False)
    if claim.id == "runtime" and claim.status is ClaimStatus.NOT_ASSESSED:
        reason += " To run it: auditor scan MODEL --runtime (a sandboxed load, no network)."
    return reason


def render(result: AuditResult) -> bytes:
    """fpdf2's own glyph and font warnings are silenced: missing glyphs are reported on the page instead."""
    logger = logging.getLogger("fpdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _Report(result).build()
    finally:
        logger.setLevel(level)

