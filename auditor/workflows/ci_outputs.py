"""What `auditor ci` writes: one SARIF log (reports/sarif.py's writer), the Markdown summary and PR
comment, GitHub workflow commands (::error / ::warning), and the job summary."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor import atomic, reports, rules, settings
from auditor.model import Finding, Severity
from auditor.reports import sarif as sarif_writer
from auditor.reports import view

if TYPE_CHECKING:
    from auditor.workflows.ci import Item, Run

COMMENT_MARKER = "<!-- auditor-ci -->"


def _placement(item: Item, run: Run) -> sarif_writer.Placement:
    """Repo files for a local unit; the manifest entry for a Hub entry (its files are not in the repo)."""
    label = item.entry.label
    if item.local_prefix or item.entry.target == ".":
        single = bool(item.result and item.result.snapshot.single_file)
        return sarif_writer.Placement(prefix=item.local_prefix, single_file=single, carrier=run.manifest if
                                      run.manifest and item.entry.line else "", carrier_line=item.entry.line,
                                      label=label)
    return sarif_writer.Placement(carrier=run.manifest or item.entry.target, carrier_line=item.entry.line,
                                  everything_at_carrier=True, label=label)


def _not_audited(item: Item, run: Run) -> tuple[Finding, sarif_writer.Placement]:
    finding = rules.finding("POLICY-NOT-AUDITED", evidence=f"{item.entry.label}: {item.error}")
    if run.manifest:
        place = sarif_writer.Placement(carrier=run.manifest, carrier_line=item.entry.line, label=item.entry.label)
    else:
        place = sarif_writer.Placement(carrier=item.local_prefix or item.entry.target, label=item.entry.label)
    return finding, place


def sarif(run: Run, threshold: Severity = Severity.LOW) -> dict[str, Any]:
    """One SARIF log with one run for the whole CI check, URIs relative to the repository root."""
    log = sarif_writer.Log(threshold=threshold, root_uri=run.repo_root.resolve().as_uri() + "/",
                           automation_id="auditor-ci/")
    verdicts = []
    for item in run.items:
        verdicts.append({"target": item.entry.label, "why": item.why, "decision": item.decision,
                         **({"error": item.error} if item.error else {})})
        if item.result is None:
            log.add_finding(*_not_audited(item, run))
            continue
        place = _placement(item, run)
        log.add(item.result, place)
        for finding in item.gate:
            log.add_finding(finding, sarif_writer.Placement(label=place.label))
    for finding in run.gate:
        log.add_finding(finding, sarif_writer.Placement())
    from auditor import __version__
    log.tool_version = log.tool_version or __version__
    return log.to_dict({"base": run.base, "manifest": run.manifest, "models": verdicts,
                        "decision": run.decision})


# -- Markdown ---------------------------------------------------------------------------------

_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "❌ error"}
_OVERALL = {"pass": "✅ PASS", "warn": "⚠️ WARN", "fail": "❌ FAIL"}


def markdown(run: Run, *, for_comment: bool = False) -> str:
    from auditor.reports.markdown import code, escape

    renderer = reports.get("markdown")
    lines = [COMMENT_MARKER] if for_comment else []
    base = f"Compared with {code(run.base[:12])}; " if run.base else ""
    lines += [f"# auditor ci: {_OVERALL[run.decision]}", "",
              f"{base}manifest {code(run.manifest) or 'none'}; {len(run.items)} audit(s).", ""]
    if run.gate:
        lines += [f"- **{escape(f.rule)}** {code(f.file, 200)}: {escape(f.title, 200)}" for f in run.gate] + [""]
    if not run.items:
        lines.append("No model entry or model file was added or changed.")
        return "\n".join(lines) + "\n"
    lines += ["| Model | Why | Policy | Decision | Findings |", "|---|---|---|---|---|"]
    for item in run.items:
        if item.result is not None:
            counts = ", ".join(f"{n} {s}" for s, n in item.result.verdict.counts.items() if n) or "none"
            pol = item.result.verdict.policy
        else:
            counts, pol = escape(item.error, 200), item.entry.policy or "-"
        lines.append(f"| {code(item.entry.label, 120)} | {escape(item.why, 120)} | {code(pol)} | "
                     f"{_ICON.get(item.decision, escape(item.decision))} | {counts} |")
    lines.append("")
    for item in run.items:
        for f in item.gate:
            lines.append(f"- ❌ **{escape(f.rule)}** {code(f.file, 200)}: {escape(f.title, 200)}")
        if item.gate:
            lines.append("")
        if item.result is not None:
            lines += [str(renderer.render(item.result)).rstrip(), ""]
    return "\n".join(lines) + "\n"


def comment(run: Run) -> str:
    return _cut(markdown(run, for_comment=True), "max_comment_chars",
                "The report was cut to fit a comment; the job summary and the SARIF have more.")


def step_summary(run: Run) -> str:
    return _cut(markdown(run), "max_summary_chars", "The summary was cut to fit GitHub's limit; see the SARIF.")


def _cut(text: str, limit_key: str, note: str) -> str:
    limit = int(rules.load("ci.yaml")[limit_key])
    if len(text) <= limit:
        return text
    return text[:limit].rsplit("\n", 1)[0] + f"\n\n_{note}_\n"


# -- GitHub workflow commands -------------------------------------------------------------------

def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _levels(item: Item) -> tuple[Severity | None, Severity | None]:
    """(error from, warning from): the severities the item's verdict reasons start at."""
    if item.result is None:
        return None, None
    named = [s for s in Severity if any(r.startswith(f"{s.label}: ") for r in item.result.verdict.reasons)]
    lowest = min(named) if named else None
    if item.decision == "fail":
        if item.fail_on not in ("fail", "warn"):
            lowest = min(x for x in (lowest, Severity.parse(item.fail_on)) if x is not None)
        return lowest, Severity.LOW
    return None, lowest if item.decision == "warn" else None


def workflow_commands(run: Run) -> list[str]:
    """`::error` for the findings that fail the run, `::warning` for those that warn (capped)."""
    out: list[str] = []
    for f in run.gate:
        out.append(_command("error", f, f.file))
    for item in run.items:
        if item.result is None:
            out.append(f"::error title={_prop('auditor: ' + item.entry.label)}::"
                       f"{_data(view.clean(item.error, 1000, keep_newlines=False))}")
            continue
        for f in item.gate:
            out.append(_command("error", f, f.file))
        error_from, warn_from = _levels(item)
        for f in view.ordered(view.active(item.result)):
            level = ("error" if error_from is not None and f.severity >= error_from else
                     "warning" if warn_from is not None and f.severity >= warn_from else "")
            if level:
                out.append(_command(level, f, _repo_file(item, f)))
    limit = int(rules.load("ci.yaml")["max_annotations"])
    if len(out) > limit:
        out = out[:limit] + [f"::notice::auditor: {len(out) - limit} more findings in the job summary and SARIF"]
    return out


def _repo_file(item: Item, f: Finding) -> str:
    from auditor.workflows.ci import _repo_path
    return _repo_path(item, f.file) if f.file and item.local_prefix is not None and (
        item.local_prefix or item.entry.target == ".") else ""


def _command(level: str, f: Finding, file: str) -> str:
    props = []
    if file:
        props.append(f"file={_prop(file)}")
        line = view.line_of(f.location)
        if line:
            props.append(f"line={line}")
    props.append(f"title={_prop(f'{f.rule} ({f.severity.label})')}")
    text = f.title + (f" ({f.location})" if f.location else "") + (f": {f.evidence}" if f.evidence else "")
    return f"::{level} {','.join(props)}::{_data(view.clean(text, 1000, keep_newlines=False))}"


# -- files --------------------------------------------------------------------------------------

def write_outputs(run: Run, *, sarif_path: str | None, markdown_path: str | None, comment_path: str | None,
                  threshold: Severity = Severity.LOW) -> list[Path]:
    written: list[Path] = []
    outputs: Iterable[tuple[str | None, Callable[[], str]]] = (
        (sarif_path, lambda: json.dumps(sarif(run, threshold), indent=2, ensure_ascii=False) + "\n"),
        (markdown_path, lambda: markdown(run)),
        (comment_path, lambda: comment(run)),
    )
    for path, make in outputs:
        if path:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic.write(target, make())
            written.append(target)
    summary = settings.current().github_step_summary or None
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:   # GitHub's summary file is appended to
            fh.write(step_summary(run))
        written.append(Path(summary))
    return written
