"""The batch index: summary.json (auditor.batch-summary/v1) and summary.md, failures first.

Order: could not be audited, fail, warn, pass; then by target. Each entry names the result files.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from auditor import __version__, rules

SCHEMA = "auditor.batch-summary/v1"
_ORDER = {"error": 0, "fail": 1, "warn": 2, "pass": 3}


def _key(entry: dict[str, Any]) -> str:
    return "error" if entry["status"] == "error" else entry["verdict"]


def build(entries: list[dict[str, Any]], *, runner: str, seconds: float) -> dict[str, Any]:
    ordered = sorted(entries, key=lambda e: (_ORDER.get(_key(e), 9), e["target"]))
    counts = {k: 0 for k in ("pass", "warn", "fail", "error")}
    origins: dict[str, int] = {}
    for e in ordered:
        counts[_key(e)] = counts.get(_key(e), 0) + 1
        if e["status"] == "audited":
            origins[e["origin"] or "unknown"] = origins.get(e["origin"] or "unknown", 0) + 1
    return {
        "schema": SCHEMA, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool_version": __version__, "rules_digest": rules.digest(), "runner": runner,
        "seconds": round(seconds, 3), "total": len(ordered), "counts": counts,
        "reused": sum(1 for e in ordered if e.get("reused")), "origins": dict(sorted(origins.items())),
        "targets": ordered,
    }


def exit_code(summary: dict[str, Any]) -> int:
    """2 when any target could not be audited, 1 when any failed, else 0."""
    if summary["counts"]["error"]:
        return 2
    return 1 if summary["counts"]["fail"] else 0


def to_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(summary: dict[str, Any]) -> str:
    c = summary["counts"]
    lines = [f"# Batch audit: {summary['total']} target(s)", "",
             f"{c['fail']} fail, {c['error']} could not be audited, {c['warn']} warn, {c['pass']} pass "
             f"({summary['reused']} reused from an earlier run); auditor {summary['tool_version']}, rules "
             f"{summary['rules_digest'][:16]}, runner {summary['runner']}, {summary['seconds']} s.", ""]
    errors = [e for e in summary["targets"] if e["status"] == "error"]
    if errors:
        lines += ["## Could not be audited", ""] + [f"- `{_cell(e['target'])}`: {_cell(e['error'])}" for e in errors]
        lines.append("")
    lines += ["## Verdicts", "", "| verdict | target | policy | findings (crit/high/med) | origin | top findings | result |",
              "|---|---|---|---|---|---|---|"]
    for e in summary["targets"]:
        if e["status"] == "error":
            continue
        n = e.get("counts", {})
        lines.append(f"| {e['verdict'].upper()} | `{_cell(e['target'])}` | {_cell(e['policy'])} | "
                     f"{n.get('critical', 0)}/{n.get('high', 0)}/{n.get('medium', 0)} | {_cell(e['origin'])} | "
                     f"{_cell('; '.join(e.get('top', [])))} | {_cell(e['outputs'].get('json', ''))} |")
    lines += ["", "## Origins", ""] + [f"- {_cell(k)}: {v}" for k, v in summary["origins"].items()]
    return "\n".join(lines) + "\n"
