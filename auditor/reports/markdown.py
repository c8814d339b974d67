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


def _findings(result: AuditResult) -> list[str]:
    """Top issues (repeats grouped, with their places) in a table, the rest collapsed."""
    issues = view.issues(view.active(result))
    if not issues:
        return ["No unwaived findings."]
    lines = ["| Severity | Rule | Where | What |", "|---|---|---|---|"]
    for issue in issues[:TOP_FINDINGS]:
        f = issue.first
        places = ", ".join(issue.locations[:3]) + (f" +{len(issue.locations) - 3}" if len(issue.locations) > 3 else "")
        where = code(f.file or "the model", 120) + (f" {escape(places, 120)}" if places else "")
        evidence = "; ".join(issue.evidence[:2])
        lines.append(f"| {f.severity.label} | {code(f.rule)} | {where} | {escape(f.title, 120)}"
                     f"{': ' + escape(evidence, 160) if evidence else ''} |")
    if len(issues) > TOP_FINDINGS:
        lines.append(f"\n…and {len(issues) - TOP_FINDINGS} more in the full report.")
    return lines


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def render(result: AuditResult) -> str:
    v = result.verdict
    model = view.model_name(result)
    rev = view.revision(result)
    lines = [f"## auditor: {_DECISION.get(v.decision, escape(v.decision))} · {escape(model)}"
             + (f" @ {code(rev[:12])}" if rev else ""), ""]
    lines.append(f"**Verdict:** {escape(v.decision.upper())} under policy {code(v.policy)} · "
                 f"{len(result.files)} files · {escape(view.counts_line(result))}"
                 + (f" · {len(view.waived(result))} waived" if view.waived(result) else ""))
    lines += ["", "### Findings", "", *_findings(result), ""]
    claims = ["| Claim | Status | Reason |", "|---|---|---|"]
    claims += [f"| {escape(c.title)} | {_STATUS[c.status]} | {escape(c.reason, 240)} |" for c in result.claims]
    tally = ", ".join(f"{sum(1 for c in result.claims if c.status is s)} {s.value}" for s in ClaimStatus)
    lines += _details(f"No direct connection: {tally}", claims)
    license_lines: list[str] = []
    if view.license_facts(result):
        law, venue = view.law_and_venue(result)
        license_lines.append(f"- Governing law: {escape(law)}; venue: {escape(venue)}")
        obligations = view.obligations(result)
        for o in obligations[:15]:
            license_lines.append(f"- **{escape(o.get('term', ''))}**: {escape(o.get('summary', ''), 240)}"
                                 + (f" (from {escape(o.get('from'))})" if o.get("from") else ""))
        if not obligations:
            license_lines.append("- No obligations recorded.")
        lines += _details(f"License: {escape(view.license_label(result))}", license_lines)
    else:
        lines += [f"License: {view.NOT_ASSESSED} (the license check did not run).", ""]
    sig = view.signature(result)
    origin = [f"- Publisher: {escape(view.publisher_line(result))}",
              f"- Signature: {escape(sig.get('status') or view.NOT_ASSESSED)}"
              + (f" ({escape(sig.get('detail'), 160)})" if sig.get("detail") else "")]
    chain = view.lineage(result)
    if chain:
        origin += ["", "| Depth | Model | Relation | Origin | License |", "|---|---|---|---|---|"]
        for e in chain[:MAX_LINEAGE]:
            place = view.origin_line({"org": e.org, "entity": e.entity, "country": e.country})
            origin.append(f"| {e.depth} | {code(e.repo_id)} | {escape(e.relation or '?')} | {escape(place)} | "
                          f"{escape(e.license or e.error or '?')} |")
        if len(chain) > MAX_LINEAGE:
            origin.append(f"\n…and {len(chain) - MAX_LINEAGE} more ancestors in the full report.")
    else:
        origin.append("- Lineage: none declared")
    lines += _details(f"Lineage and origin: {escape(view.effective_origin_line(result))}", origin)
    lines += [f"<sub>auditor {escape(result.tool_version)} · {escape(result.started_at)}</sub>", ""]
    return "\n".join(lines)
