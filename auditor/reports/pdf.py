"""The PDF a compliance team files (fpdf2, PDF/A-3B, with the DejaVu fonts shipped in reports/fonts).

Page one is the decision: model, revision, verdict, the "no direct connection" claims with their
status, and who/when/which policy. Then lineage and origin, license obligations, findings and the file
inventory with hashes. The JSON result and the CycloneDX BOM ride along as associated files, so the PDF
is the evidence and carries its machine-readable form. Text is drawn as text (no markup is interpreted).
"""
from __future__ import annotations

from typing import Any

from auditor.model import AuditResult, ClaimStatus, Severity
from auditor.reports import view

EXTENSION = ".pdf"
# A person reads the PDF; beyond these the PDF says how many were left out (the attached JSON has them all).
MAX_FINDINGS = 300
MAX_FILES = 10_000
_MONO_EM = 0.602              # DejaVu Sans Mono advance width in em: fitting text needs no width measuring

_STATUS_COLOR = {ClaimStatus.SUPPORTED: (26, 127, 55), ClaimStatus.REFUTED: (207, 34, 46),
                 ClaimStatus.NOT_ASSESSED: (87, 96, 106)}
_DECISION_COLOR = {"pass": (26, 127, 55), "warn": (154, 103, 0), "fail": (207, 34, 46)}
_SEVERITY_COLOR = {Severity.CRITICAL: (164, 14, 38), Severity.HIGH: (207, 34, 46), Severity.MEDIUM: (154, 103, 0),
                   Severity.LOW: (9, 105, 218), Severity.INFO: (87, 96, 106)}
_GREY = (87, 96, 106)
_HEAD_FILL = (240, 242, 245)


def _t(value: Any, limit: int = 0, keep_newlines: bool = True) -> str:
    return view.clean(value, limit, keep_newlines=keep_newlines)


def _middle(text: str, room: int) -> str:
    """`a/very/long/…/path.bin`: keep both ends of a path, which is where the names are."""
    if len(text) <= room or room < 5:
        return text
    head = (room - 1) // 2
    return text[:head] + "…" + text[len(text) - (room - 1 - head):]


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
        pdf.set_auto_page_break(True, margin=16)
        pdf.set_margins(15, 15, 15)
        model = _t(view.model_name(result), 200)
        pdf.set_title(f"auditor report: {model}")
        pdf.set_author("auditor")
        pdf.set_subject(f"Model supply-chain audit: {result.verdict.decision.upper()}")
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
    def decision_page(self) -> None:
        r, pdf = self.result, self.pdf
        pdf.add_page()
        self.para("MODEL SUPPLY-CHAIN AUDIT · DECISION RECORD", 8, _GREY)
        self.heading(_t(view.model_name(r), 200), 17)
        decision = r.verdict.decision
        color = _DECISION_COLOR.get(decision, _DECISION_COLOR["fail"])
        pdf.set_fill_color(*color)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("DejaVu", "B", 20)
        pdf.cell(45, 13, decision.upper(), align="C", fill=True)
        pdf.set_fill_color(255, 255, 255)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "", 10)
        counts = ", ".join(f"{n} {s}" for s, n in view.counts(r).items() if n) or "no unwaived findings"
        waived = len(view.waived(r))
        pdf.set_x(pdf.l_margin + 50)
        pdf.multi_cell(0, 6.5, f"Policy: {_t(r.verdict.policy)}\n{counts}" + (f"; {waived} waived" if waived else ""),
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for reason in r.verdict.reasons[:6]:
            self.para(f"• {_t(reason, 300)}", 9)
        pdf.ln(2)
        snap = r.snapshot
        rev = view.revision(r)
        from auditor.reports.cyclonedx import manifest_digest
        facts = [
            ["Model", _t(view.model_name(r))],
            ["Revision", _t(rev) if rev else "not pinned (no commit recorded)"],
            ["Target", _t(r.target)],
            ["Source", _t(snap.kind) + (f" via {_t(snap.endpoint)}" if snap.endpoint else "")],
            ["Hosts contacted", _t(", ".join(snap.hosts_contacted)) or "none (nothing fetched)"],
            ["Audited", f"{_t(r.started_at)} by auditor {_t(r.tool_version)} (automated)"],
            ["Policy", _t(r.verdict.policy)],
            ["Files", f"{len(r.files)}; manifest SHA-256 {manifest_digest(r)}"],
        ]
        self.table(None, facts, (32, 148), 8.5)
        self.heading("No direct connection: claims", 12)
        rows = [[_t(c.title), (c.status.value.upper(), _STATUS_COLOR[c.status]), _t(c.reason, 400)]
                for c in r.claims]
        self.table(["Claim", "Status", "Reason"], rows, (62, 26, 92), 8.5)
        self.para("A claim is supported only when the check behind it ran and no finding contradicts it; "
                  "'not assessed' means the check did not run or could not verify. The JSON result and the "
                  "CycloneDX BOM are attached to this file.", 7.5, _GREY)

    def lineage_page(self) -> None:
        r = self.result
        self.pdf.add_page()
        self.heading("Lineage and origin")
        sig = view.signature(r)
        self.table(None, [
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
        self.heading("License and obligations")
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
        self.pdf.add_page()
        findings = view.ordered(r.findings)
        self.heading(f"Findings ({len(findings)})")
        if not findings:
            self.para("No findings.")
            return
        rows = []
        for f in findings[:MAX_FINDINGS]:
            what = _t(f.title, 300) + (f"\n{_t(f.evidence, 500)}" if f.evidence else "")
            if f.waived:
                what += f"\nWAIVED: {_t(f.waiver, 300)}"
            rows.append([(f.severity.label.upper(), _SEVERITY_COLOR[f.severity]), _t(f.rule),
                         _t(view.where(f), 300), what])
        self.table(["Severity", "Rule", "Where", "Finding"], rows, (18, 48, 40, 74), 7.5)
        if len(findings) > MAX_FINDINGS:
            self.para(f"{len(findings) - MAX_FINDINGS} more findings are in the attached JSON result.", 8, _GREY)

    def files_page(self) -> None:
        r = self.result
        self.pdf.add_page()
        self.heading(f"File inventory ({len(r.files)})")
        self.file_grid(sorted(r.files, key=lambda f: f.path)[:MAX_FILES])
        if len(r.files) > MAX_FILES:
            self.para(f"{len(r.files) - MAX_FILES} more files are in the attached JSON result.", 8, _GREY)

    def file_grid(self, files: list[Any]) -> None:
        """One line per file in the monospace font: fpdf2's wrapping table is far too slow for thousands of
        rows, and a fixed-width font lets a long path be shortened in the middle without measuring it."""
        pdf = self.pdf
        size, height = 6, 3.4
        widths = (64, 19, 14, 83)     # 64 hex digits at 6 pt need 81.5 mm
        per_char = _MONO_EM * size * 25.4 / 72
        pdf.set_draw_color(208, 215, 222)
        pdf.set_text_color(0, 0, 0)

        def header() -> None:
            pdf.set_font("DejaVu", "B", 7)
            pdf.set_fill_color(*_HEAD_FILL)
            for w, h in zip(widths, ("Path", "Format", "Size", "SHA-256"), strict=True):
                pdf.cell(w, height + 0.6, h, border="B", fill=True)
            pdf.ln()
            pdf.set_fill_color(255, 255, 255)
            pdf.set_font("DejaVuMono", "", size)
        header()
        for f in files:
            if pdf.get_y() + height > pdf.page_break_trigger:
                pdf.add_page()
                header()
            cells = (_middle(_t(f.path, keep_newlines=False), int(widths[0] / per_char) - 1), _t(f.format, 14),
                     view.human_size(f.size), f.sha256 or _t(f.error or "unreadable", 60))
            for w, text in zip(widths, cells, strict=True):
                pdf.cell(w, height, text, border="B")
            pdf.ln()
        pdf.ln(2)

    def attach(self) -> None:
        from auditor.reports import cyclonedx, json_report
        when = view.started(self.result)
        self.pdf.embed_file(bytes=json_report.render(self.result).encode("utf-8"), basename="auditor-result.json",
                            mime_type="application/json", associated_file_relationship="Data",
                            desc="The canonical auditor result (auditor.report/v1)", modification_date=when)
        self.pdf.embed_file(bytes=cyclonedx.render(self.result).encode("utf-8"), basename="bom.cdx.json",
                            mime_type="application/vnd.cyclonedx+json", associated_file_relationship="Data",
                            desc="CycloneDX 1.6 ML-BOM with the no-direct-connection declarations",
                            modification_date=when)

    def build(self) -> bytes:
        self.decision_page()
        self.lineage_page()
        self.findings_page()
        self.files_page()
        self.attach()
        return bytes(self.pdf.output())


def render(result: AuditResult) -> bytes:
    return _Report(result).build()

