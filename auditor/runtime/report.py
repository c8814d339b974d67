"""The sandboxed probe's lines (untrusted: validated here) -> runtime facts and RUNTIME-* findings."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from auditor import rules
from auditor.model import Finding, Severity
from auditor.record import field, record
from auditor.runtime.child_watch import DNS, FILE_CHANGES, NETWORK, SPAWN
from auditor.sandbox import Outcome

NAME = "runtime"
MAX_FACT_EVENTS = 200
MAX_TEXT = 500
# The event names the in-sandbox watcher reports, from the watcher itself (one list for both sides).
WRITES = {"open"} | FILE_CHANGES
ATTEMPT_RULES = ("RUNTIME-NETWORK", "RUNTIME-DNS", "RUNTIME-SPAWN", "RUNTIME-FILE-WRITE")
LIMIT_STATUSES = ("timeout", "idle-timeout", "output-limit")


def sensitive_set(value: Any) -> set[str]:
    """The sensitive origins as resolved by judge.regions (its one default when none is given)."""
    from auditor.judge.regions import default_sensitive_origins
    return {str(v).upper() for v in (value or default_sensitive_origins())}


@record
class _Parsed:
    events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    shrunk: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    peak_rss_mb: float = 0.0
    truncated: bool = False
    malformed: int = 0


def _s(value: Any) -> str:
    return str(value)[:MAX_TEXT] if value is not None else ""


def _parse(lines: Iterable[Any]) -> _Parsed:
    parsed = _Parsed()
    for line in lines:
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "event":
            parsed.events.append(_event(line))
        elif kind == "outcome" and 0 <= _int(line.get("index")) < len(parsed.events):
            parsed.events[_int(line.get("index"))]["outcome"] = _s(line.get("outcome"))
        elif kind == "step":
            parts = line.get("parts") if isinstance(line.get("parts"), list) else []
            parsed.steps.append({"kind": _s(line.get("kind")), "path": _s(line.get("path")),
                                 "status": _s(line.get("status")), "error": _s(line.get("error")),
                                 "where": _s(line.get("where")), "parts": [_s(p) for p in parts[:20]]})
        elif kind == "start":
            parsed.started.append(_s(line.get("path")))
        elif kind == "shrunk" and isinstance(line.get("changes"), dict):
            parsed.shrunk = {_s(k): [_s(x) for x in v][:2] for k, v in list(line["changes"].items())[:100]
                             if isinstance(v, list)}
        elif kind == "done":
            parsed.done = True
            rss = line.get("peak_rss_mb")
            parsed.peak_rss_mb = float(rss) if isinstance(rss, (int, float)) and 0 <= rss < 1e7 else 0.0
        else:
            parsed.truncated = parsed.truncated or kind == "truncated"
            parsed.malformed += kind != "truncated"
    return parsed


def _event(line: dict[str, Any]) -> dict[str, Any]:
    raw_site = line.get("site")
    site: dict[str, Any] = raw_site if isinstance(raw_site, dict) else {}
    target = next((line[k] for k in ("host", "address", "command", "path", "module", "library") if k in line), "")
    return {"event": _s(line.get("event")), "step": _s(line.get("step")), "file": _s(site.get("file")),
            "line": _int(site.get("line")), "in_model": site.get("in_model") is True, "target": _s(target),
            "port": _s(line.get("port"))}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def interpret(outcome: Outcome, steps: list[dict[str, Any]], sensitive: set[str]) -> tuple[list[Finding], dict]:
    if outcome.status == "unavailable":
        return ([rules.finding("RUNTIME-SANDBOX-UNAVAILABLE", scanner=NAME, evidence=outcome.detail)],
                {"status": "unavailable", "reason": f"sandbox unavailable: {outcome.detail}"})
    parsed = _parse(outcome.lines)
    findings = list(_attempt_findings(parsed.events, sensitive))
    findings += _step_findings(parsed.steps)
    incomplete = _incomplete_reason(outcome, parsed)
    if incomplete:
        running = next((p for p in reversed(parsed.started) if p not in {s["path"] for s in parsed.steps}), "")
        rule = "RUNTIME-LIMIT" if outcome.status in LIMIT_STATUSES or "limit" in outcome.detail \
            or "memory" in outcome.detail or "SIGKILL" in outcome.detail else "RUNTIME-LOAD-FAILED"
        findings.append(rules.finding(rule, file=running, scanner=NAME, evidence=incomplete))
    attempts = sum(1 for f in findings if f.rule in ATTEMPT_RULES)
    loaded = all(s["status"] == "ok" for s in parsed.steps) and len(parsed.steps) == len(steps)
    fact = {"status": "completed" if parsed.done and not incomplete else "incomplete",
            "reason": incomplete, "sandbox": "bubblewrap", "seconds": round(outcome.seconds, 3),
            "child_peak_rss_mb": parsed.peak_rss_mb,
            "steps": parsed.steps, "all_loaded": loaded and not incomplete,
            "forward": any("forward" in s["parts"] for s in parsed.steps), "attempts": attempts,
            "events": parsed.events[:MAX_FACT_EVENTS], "events_total": len(parsed.events),
            "events_truncated": parsed.truncated, "shrunk": parsed.shrunk}
    return findings, fact


def _incomplete_reason(outcome: Outcome, parsed: _Parsed) -> str:
    if outcome.status != "ok":
        return f"the sandboxed load stopped ({outcome.status}): {outcome.detail}"
    if not parsed.done:
        return "the sandboxed load ended before it finished (the model's code may have exited the interpreter)"
    if parsed.malformed:
        return f"{parsed.malformed} result line(s) from the sandbox were malformed"
    return ""


def _step_findings(steps: list[dict[str, Any]]) -> list[Finding]:
    out = []
    for step in steps:
        if step["status"] != "ok":
            out.append(rules.finding("RUNTIME-LOAD-FAILED", file=step["path"], location=step["where"], scanner=NAME,
                                     evidence=f"{step['kind']} load {step['status']}: {step['error']}"))
    return out


def _attempt_findings(events: list[dict[str, Any]], sensitive: set[str]) -> Iterable[Finding]:
    from auditor.scanners.endpoints import classifier
    grouped: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for event in events:
        rule = _rule_of(event["event"])
        if rule:
            where = f"{event['file']}:{event['line']}" if event["file"] else ""
            file = event["file"] if event["in_model"] else event["step"].split(" ", 1)[-1] \
                if " " in event["step"] else ""
            grouped.setdefault((rule, file, where, event["target"]), []).append(event)
    for (rule, file, where, target), group in grouped.items():
        first = group[0]
        severity, origin = None, ""
        host = _host(first)
        if host and rule in ("RUNTIME-NETWORK", "RUNTIME-DNS"):
            info = classifier().classify(host)
            if info.country:
                origin = f"; {host} is operated from {info.country} ({info.operator or info.kind})"
                if info.country in sensitive:
                    severity = Severity.CRITICAL
                    origin += ", a sensitive origin"
        times = f"; {len(group)} times" if len(group) > 1 else ""
        during = f" during {first['step']}" if first["step"] else ""
        evidence = (f"{first['event']} {target}{(':' + first['port']) if first['port'] else ''}{during}; "
                    f"outcome: {first.get('outcome') or 'not observed'}{times}{origin}")
        yield rules.finding(rule, file=file, location=where, scanner=NAME, evidence=evidence, severity=severity)


def _rule_of(event: str) -> str:
    if event in NETWORK:
        return "RUNTIME-NETWORK"
    if event in DNS:
        return "RUNTIME-DNS"
    if event in SPAWN:
        return "RUNTIME-SPAWN"
    if event in WRITES:
        return "RUNTIME-FILE-WRITE"
    if event == "import":
        return "RUNTIME-UNEXPECTED-IMPORT"
    return ""


def _host(event: dict[str, Any]) -> str:
    target = event["target"]
    if event["event"] in DNS:
        return target
    if event["event"] == "urllib.Request":
        from urllib.parse import urlsplit
        return urlsplit(target.split(" ", 1)[0]).hostname or ""
    head = target.split(" ", 1)[0]
    return head.rsplit(":", 1)[0] if ":" in head else head
