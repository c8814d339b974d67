"""The PDF a compliance team files (PDF/A-3B written by pdf_doc, with the DejaVu fonts shipped in reports/fonts).

Page one is the decision: model, revision, verdict, the "no direct connection" claims with their
status, and who/when/which policy. Then lineage and origin, license obligations, findings and the file
inventory with hashes. The JSON result and the CycloneDX BOM ride along as associated files, so the PDF
is the evidence and carries its machine-readable form. Text is drawn as text (no markup is interpreted).
"""
from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from auditor.model import AuditResult, ClaimStatus, FileRecord, Finding, Severity
from auditor.record import fields, is_record
from auditor.reports import view
from auditor.reports.pdf_attach import Attachments
from auditor.reports.pdf_doc import HEIGHT, WIDTH, Document, Info, K
from auditor.reports.pdf_font import TrueType, has_outlines
from auditor.reports.pdf_grid import Cell, Grid, Page, Table, Text, rgb_op, text_for

EXTENSION = ".pdf"
# A person reads the PDF; beyond these the PDF says how many were left out (the attached JSON has them all).
MAX_FINDINGS = 300
MAX_FILES = 10_000

_STATUS_COLOR = {ClaimStatus.SUPPORTED: (26, 127, 55), ClaimStatus.REFUTED: (207, 34, 46),
                 ClaimStatus.NOT_ASSESSED: (87, 96, 106)}
_DECISION_COLOR = {"pass": (26, 127, 55), "warn": (154, 103, 0), "fail": (207, 34, 46)}
_SEVERITY_COLOR = {Severity.CRITICAL: (164, 14, 38), Severity.HIGH: (207, 34, 46), Severity.MEDIUM: (154, 103, 0),
                   Severity.LOW: (9, 105, 218), Severity.INFO: (87, 96, 106)}
_GREY = (87, 96, 106)
_RED = (207, 34, 46)
PAGE_ONE_REASONS = 6
# CJK-capable TrueType fonts the PDF falls back to for characters DejaVu lacks (Debian package in the comment).
# Noto Sans CJK (fonts-noto-cjk) is not among them: its outlines are CFF, which pdf_font does not embed.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",              # fonts-wqy-microhei
             "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",                # fonts-wqy-zenhei
             "/usr/share/fonts/truetype/arphic/uming.ttc",                  # fonts-arphic-uming
             "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")   # fonts-droid-fallback


@functools.cache
def cjk_font() -> str:
    """The first of CJK_FONTS installed that pdf_font can embed."""
    return next((p for p in CJK_FONTS if Path(p).is_file() and has_outlines(p)), "")


def drawable(chars: set[str]) -> set[int]:
    """The code points of `chars` the PDF draws as themselves: above ASCII, and not one that view.clean()
    shows as <U+XXXX>."""
    return {ord(ch) for ch in chars if ord(ch) > 0x7E and view.clean(ch) == ch}


def uncovered(wanted: set[int], fonts: Iterable[Any]) -> list[str]:
    """The characters none of the fonts has a glyph for."""
    for font in fonts:
        wanted = {c for c in wanted if c not in font.cmap}
        if not wanted:
            return []
    return sorted(chr(c) for c in wanted)


_ASCII_RUNS = re.compile("[\x00-\x7f]+")


def _non_ascii(text: str) -> str:
    return "" if text.isascii() else _ASCII_RUNS.sub("", text)


def result_chars(result: AuditResult) -> set[str]:
    """The non-ASCII characters of every text in the result (what its JSON holds), without rendering it: the
    records' text fields a column at a time, the facts through the C JSON encoder."""
    found: list[str] = []
    for records, kind in ((result.files, FileRecord), (result.findings, Finding)):
        for name in (f.name for f in fields(kind) if f.type in ("str", str)):
            found.append(_non_ascii("".join(map(operator.attrgetter(name), records))))
    found.append(_non_ascii(json.dumps(result.facts, ensure_ascii=False, default=str)))
    rest = [v for f in fields(result) if f.name not in ("files", "findings", "facts")
            for v in [getattr(result, f.name)]]
    found.append(_non_ascii(json.dumps(rest, ensure_ascii=False, default=_record_values)))
    return set("".join(found))


def _record_values(value: Any) -> Any:
    """Records (claims, verdict, snapshot) as their fields' values, for json.dumps."""
    if is_record(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in fields(value)]
    return str(value)


def glyphs_finding(missing: list[str]) -> Finding:
    from auditor import rules
    sample = " ".join(f"U+{ord(ch):04X}" for ch in missing[:20])     # the characters themselves cannot be drawn
    return rules.finding("REPORT-GLYPHS-MISSING", file="", location="this PDF",
                         evidence=f"{len(missing)} character(s) without a font, e.g. {sample}")
_HEAD_FILL = (240, 242, 245)


def _t(value: Any, limit: int = 0, keep_newlines: bool = True) -> str:
    return view.clean(value, limit, keep_newlines=keep_newlines)


class _Report:
    def __init__(self, result: AuditResult) -> None:
        from auditor.rules import data_dir
        self.result = result
        self.files = sorted(result.files, key=operator.attrgetter("path"))     # once: page one's digest, inventory
        folder = data_dir("reports")
        regular = TrueType(folder / "fonts" / "DejaVuSans.ttf", "regular")
        fonts = [regular, TrueType(folder / "fonts" / "DejaVuSans-Bold.ttf", "bold"),
                 TrueType(folder / "fonts" / "DejaVuSansMono.ttf", "mono")]
        wanted = drawable(result_chars(result))
        self.fallbacks = ["regular"]
        beyond = uncovered(wanted, [regular])
        if cjk_font() and beyond:       # the big CJK font only when DejaVu cannot draw everything
            fonts.append(TrueType(cjk_font(), "cjk"))
            self.fallbacks.append("cjk")
        self.missing = uncovered(wanted, [f for f in fonts if f.key in self.fallbacks])
        self.doc = Document(fonts, (folder / "color" / "sRGB2014.icc").read_bytes())
        model = _t(view.model_name(result), 200)
        decision = result.verdict.decision
        self.info = Info(title=f"auditor report: {model}", author="auditor",
                         subject=f"Model supply-chain audit: {decision.upper()}",
                         keywords=f"auditor, model supply chain, {decision}",
                         creator=f"auditor {_t(result.tool_version)}",
                         created=view.started(result).replace(microsecond=0))   # XMP and Info alike
        self.footer_text = f"{model} · {decision.upper()} · auditor {_t(result.tool_version)}"

    def text(self, font: str, size: float) -> Text:
        return text_for(self.doc, font, size, self.fallbacks)

    def footer(self, number: int, total: int) -> str:
        text = self.text("regular", 7)
        line = f"{self.footer_text} · page {number}/{total}"
        x = (WIDTH - text.mm(line)) / 2
        return f"BT {rgb_op(_GREY, 'rg')} {text.show(x * K, Page.baseline(HEIGHT - 12, 5, 7), line, [None])} ET"

    # -- building blocks -------------------------------------------------------------------------
    def lines(self, text: str, font: str, size: float, height: float, color: tuple[int, int, int] = (0, 0, 0),
              indent: float = 0) -> None:
        """Wrapped text from the left margin (+ indent), `height` mm a line, breaking pages as it goes."""
        doc, face = self.doc, self.text(font, size)
        page = Page(doc)
        page.color(color)
        x = (doc.left + indent + 1) * K
        for line in face.wrap(text, face.units(doc.content_width - indent - 2)):
            if doc.y + height > doc.page_break_trigger:
                page.flush()
                doc.add_page()
                page.color(color)
            page.text.append(face.show(x, page.baseline(doc.y, height, size), line, page.state))
            doc.y += height
        page.flush()

    def heading(self, text: str, size: float = 13) -> None:
        self.doc.y += 2
        self.lines(text, "bold", size, size * 0.55)
        self.doc.y += 1

    def para(self, text: str, size: float = 9, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.lines(text, "regular", size, size * 0.5, color)

    def table(self, headings: list[str] | None, rows: list[list[Any]], widths: tuple[float, ...],
              size: float = 8) -> None:
        """rows: cells are str or (str, rgb) for a bold white-on-colour cell; no headings = a key/value table
        with the keys in bold."""
        Table(self.doc, widths, size, self.fallbacks, _HEAD_FILL).draw(headings, rows)
        self.doc.y += 2

    # -- pages -----------------------------------------------------------------------------------
    def section(self, title: str, size: float = 13) -> None:
        """A heading that is also a bookmark; sections flow on from the previous one."""
        doc = self.doc
        if doc.y + 30 > doc.page_break_trigger:
            doc.add_page()
        doc.bookmark(title)
        self.heading(title, size)

    def decision_box(self) -> None:
        """The decision in white on its colour, the policy and counts beside it."""
        r, doc = self.result, self.doc
        decision = r.verdict.decision
        page, bold, y = Page(doc), self.text("bold", 18), doc.y
        page.fill(doc.left, y, 40, 11, _DECISION_COLOR.get(decision, _DECISION_COLOR["fail"]))
        page.text.append("1 g")
        label = decision.upper()
        page.text.append(bold.show((doc.left + (40 - bold.mm(label)) / 2) * K, page.baseline(y, 11, 18), label,
                                   page.state))
        page.text.append("0 g")
        page.flush()
        waived = len(view.waived(r))
        beside = f"Policy: {_t(r.verdict.policy, 80)}\n{view.counts_line(r)}" + (f"; {waived} waived" if waived else "")
        self.lines(beside, "regular", 9, 5.5, indent=45)
        doc.y = max(doc.y, y + 11) + 1

    def decision_page(self) -> None:
        """Page one, always whole: the decision, the model's identity, license and origin, every claim, the
        sign-off block. Long values are wrapped and capped here; the sections after it have them in full."""
        r, doc = self.result, self.doc
        doc.add_page()
        doc.bookmark("Decision")
        self.para("MODEL SUPPLY-CHAIN AUDIT · DECISION RECORD", 8, _GREY)
        self.heading(_t(view.model_name(r), 160), 15)
        self.decision_box()
        reasons = list(r.verdict.reasons)
        for reason in reasons[:PAGE_ONE_REASONS]:
            self.para(f"• {_t(reason, 160, keep_newlines=False)}", 8)
        if len(reasons) > PAGE_ONE_REASONS:
            self.para(f"• and {len(reasons) - PAGE_ONE_REASONS} more (Findings section)", 8, _GREY)
        if self.missing:
            self.para(f"Note: {len(self.missing)} character(s) in this result have no font on this machine and "
                      "are left out of the pages (install fonts-wqy-microhei); the attached JSON has the exact text. "
                      f"Examples: {' '.join(f'U+{ord(ch):04X}' for ch in self.missing[:12])}", 8, _RED)
        doc.y += 1
        rev = view.revision(r)
        from auditor.model import manifest_digest
        facts = [
            ["Model", _t(view.model_name(r), 200) + (f" @ {_t(rev)}" if rev else " (no commit recorded)")],
            ["License", _t(view.license_label(r), 200)],
            ["Publisher", _t(view.publisher_line(r), 200)],
            ["Effective origin", _t(view.effective_origin_line(r), 200)],
            ["Source", _t(r.snapshot.kind) + (f" via {_t(r.snapshot.endpoint, 120)}" if r.snapshot.endpoint else "")
             + f"; {len(r.files)} files; manifest SHA-256 {manifest_digest(self.files)}"],
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
        doc = self.doc
        doc.y += 2
        self.lines("Review and sign-off (filed copy)", "bold", 8, 5)
        page, face, x = Page(doc), self.text("regular", 8), doc.left
        for label, width in (("Reviewer", 70), ("Date", 35), ("Decision / signature", 75)):
            page.box(x, doc.y, width, 9)
            page.text.append(face.show((x + 1) * K, page.baseline(doc.y, 9, 8), f"{label}:", page.state))
            x += width
        page.flush("0.471 0.471 0.471 RG")
        doc.y += 11

    def lineage_page(self) -> None:
        r = self.result
        self.doc.add_page()
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
        self.table(["Severity", "Rule", "Where", "Finding"], rows, (18, 46, 44, 72), 7.5)
        if len(issues) > MAX_FINDINGS:
            self.para(f"{len(issues) - MAX_FINDINGS} more issues are in the attached JSON result.", 8, _GREY)

    def files_page(self) -> None:
        r = self.result
        self.section(f"File inventory ({len(r.files)})")
        self.file_grid(self.files[:MAX_FILES])
        if len(r.files) > MAX_FILES:
            self.para(f"{len(r.files) - MAX_FILES} more files are in the attached JSON result.", 8, _GREY)

    def file_grid(self, files: list[Any]) -> None:
        """One row per file in the monospace font, drawn by pdf_grid.Grid; a long path wraps onto more lines,
        never cut, so two folders never look the same."""
        rows = ((_t(f.path, keep_newlines=False), _t(f.format, 14), view.human_size(f.size),
                 f.sha256 or _t(f.error or "unreadable", 60)) for f in files)
        widths = (64, 19, 14, 83)     # 64 hex digits at 6 pt need 81.5 mm
        Grid(self.doc, widths, ("Path", "Format", "Size", "SHA-256"), _HEAD_FILL, self.fallbacks).draw(rows)
        self.doc.y += 2

    def build(self, attachments: Attachments) -> Iterator[bytes]:
        self.decision_page()
        self.lineage_page()
        self.findings_page()
        self.files_page()
        return self.doc.output(self.info, attachments.finish(), self.footer)


def _claim_reason(claim: Any) -> str:
    reason = _t(claim.reason, 170, keep_newlines=False)
    if claim.id == "runtime" and claim.status is ClaimStatus.NOT_ASSESSED:
        reason += " To run it: auditor scan MODEL --runtime (a sandboxed load, no network)."
    return reason


def iter_render(result: AuditResult) -> Iterator[bytes]:
    """The PDF in pieces; the attachments are rendered by a child process meanwhile (pdf_attach)."""
    attachments = Attachments(result).start()
    try:
        yield from _Report(result).build(attachments)
    finally:
        attachments.close()


def render(result: AuditResult) -> bytes:
    return b"".join(iter_render(result))
