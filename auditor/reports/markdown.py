"""A compact Markdown summary for a PR comment or $GITHUB_STEP_SUMMARY: verdict, top findings, the
"no direct connection" claims, license obligations, lineage. Every untrusted string goes through
`escape()`: no raw HTML, no Markdown structure, no @mentions, #refs or autolinks can come from a model.
"""
from __future__ import annotations

from auditor.model import AuditResult, ClaimStatus
from auditor.reports import view

EXTENSION = ".md"
TOP_FINDINGS = 10
MAX_LINEAGE = 20        # a PR comment is capped at 65,536 characters

_STATUS = {ClaimStatus.SUPPORTED: "✅ supported", ClaimStatus.REFUTED: "❌ refuted",
           ClaimStatus.NOT_ASSESSED: "⚪ not assessed"}
_DECISION = {"pass": "✅ PASS", "warn": "⚠️ WARN", "fail": "❌ FAIL"}
# Escaped text is never at the start of a line (every line has a prefix), so `-`, `+`, `.` stay as they are.
_MD_SPECIAL = set("\\`*_{}[]()!|~")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "@": "&#64;", "#": "&#35;"}


def escape(text: object, limit: int = 0) -> str:
    """Untrusted text -> inert inline Markdown (one line, safe inside a table cell)."""
    plain = view.clean(text, limit, keep_newlines=False)
    out = []
    for ch in plain:
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    # `https://x` would be autolinked even with escapes around it; break the scheme separator.
    return "".join(out).replace("://", "&#58;//")


def code(text: object, limit: int = 0) -> str:
    """A short untrusted value (rule id, hash, path) as inline code, backticks neutralised."""
    plain = view.clean(text, limit, keep_newlines=False).replace("`", "ˋ").replace("|", "¦")
    return f"`{plain}`" if plain else ""


def render(result: AuditResult) -> str:
    v = result.verdict
    model = view.model_name(result)
    rev = view.revision(result)
    lines = [f"## auditor: {_DECISION.get(v.decision, escape(v.decision))} · {escape(model)}"
             + (f" @ {code(rev[:12])}" if rev else ""), ""]
    counts = ", ".join(f"{n} {s}" for s, n in view.counts(result).items() if n) or "no findings"
    lines.append(f"**Verdict:** {escape(v.decision.upper())} under policy {code(v.policy)} · "
                 f"{len(result.files)} files · {counts}" + (f" · {len(view.waived(result))} waived"
                                                            if view.waived(result) else ""))
    for reason in v.reasons[:5]:
        lines.append(f"- {escape(reason, 300)}")
    lines += ["", "### Top findings", ""]
    findings = view.ordered(view.active(result))
    if findings:
        lines += ["| Severity | Rule | Where | What |", "|---|---|---|---|"]
        for f in findings[:TOP_FINDINGS]:
            lines.append(f"| {f.severity.label} | {code(f.rule)} | {code(view.where(f), 120)} | "
                         f"{escape(f.title, 120)}{': ' + escape(f.evidence, 160) if f.evidence else ''} |")
        if len(findings) > TOP_FINDINGS:
            lines.append(f"\n…and {len(findings) - TOP_FINDINGS} more in the full report.")
    else:
        lines.append("No unwaived findings.")
    lines += ["", "### No direct connection", "", "| Claim | Status | Reason |", "|---|---|---|"]
    for c in result.claims:
        lines.append(f"| {escape(c.title)} | {_STATUS[c.status]} | {escape(c.reason, 240)} |")
    lines += ["", "### License", ""]
    if view.license_facts(result):
        law, venue = view.law_and_venue(result)
        lines.append(f"- Model license: {escape(view.license_label(result))}")
        lines.append(f"- Governing law: {escape(law)}; venue: {escape(venue)}")
        obligations = view.obligations(result)
        for o in obligations[:15]:
            lines.append(f"- **{escape(o.get('term', ''))}**: {escape(o.get('summary', ''), 240)}"
                         + (f" (from {escape(o.get('from'))})" if o.get("from") else ""))
        if not obligations:
            lines.append("- No obligations recorded.")
    else:
        lines.append(f"License: {view.NOT_ASSESSED} (the license check did not run).")
    lines += ["", "### Lineage and origin", ""]
    lines.append(f"- Publisher: {escape(view.publisher_line(result))}")
    lines.append(f"- Effective origin: {escape(view.effective_origin_line(result))}")
    sig = view.signature(result)
    lines.append(f"- Signature: {escape(sig.get('status') or view.NOT_ASSESSED)}"
                 + (f" ({escape(sig.get('detail'), 160)})" if sig.get("detail") else ""))
    chain = view.lineage(result)
    if chain:
        lines += ["", "| Depth | Model | Relation | Origin | License |", "|---|---|---|---|---|"]
        for e in chain[:MAX_LINEAGE]:
            origin = view.origin_line({"org": e.org, "entity": e.entity, "country": e.country})
            lines.append(f"| {e.depth} | {code(e.repo_id)} | {escape(e.relation or '?')} | {escape(origin)} | "
                         f"{escape(e.license or e.error or '?')} |")
        if len(chain) > MAX_LINEAGE:
            lines.append(f"\n…and {len(chain) - MAX_LINEAGE} more ancestors in the full report.")
    else:
        lines.append("- Lineage: none declared")
    lines += ["", f"<sub>auditor {escape(result.tool_version)} · {escape(result.started_at)}</sub>", ""]
    return "\n".join(lines)
