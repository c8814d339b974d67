"""The pipeline: target -> Snapshot -> Inventory -> scanners -> findings -> verdict + claims."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from auditor import __version__, inventory, policy, scanners, sources, waivers
from auditor.model import AuditResult, Finding, Options

FindingCallback = Callable[[Finding], None]


def audit(target: str, options: Options | None = None, *,
          progress: inventory.Progress | None = None,
          on_finding: FindingCallback | None = None) -> AuditResult:
    options = options or Options()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    chosen_policy = policy.load(options.policy)   # a bad policy fails before any work
    user_waivers = waivers.discover(options.waivers)   # so does a bad waivers file

    t = time.perf_counter()
    snapshot = sources.open_snapshot(target, options)
    timings["fetch"] = time.perf_counter() - t

    t = time.perf_counter()
    inv = inventory.build(snapshot, options, progress)
    timings["inventory"] = time.perf_counter() - t
    findings: list[Finding] = list(inv.findings)
    if on_finding:
        for f in findings:
            on_finding(f)

    ctx = scanners.ScanContext(snapshot=snapshot, files=tuple(inv.files), options=options, policy=chosen_policy)
    ran: set[str] = set()
    for module in scanners.load():
        name = getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1])
        t = time.perf_counter()
        for _name, finding in scanners.run(ctx, [module]):
            findings.append(finding)
            if on_finding:
                on_finding(finding)
        timings[f"scan.{name}"] = time.perf_counter() - t
        ran.add(name)

    findings = _dedupe(findings)
    findings.sort(key=lambda f: (-f.severity, f.file, f.rule, f.location))
    # overrides, waivers, claims, the policy's own requirements, then the verdict (policy.gate)
    gated = policy.gate(chosen_policy, findings, snapshot=snapshot, files=ctx.files, facts=ctx.facts,
                        scanners_ran=ran, extra_waivers=user_waivers)
    findings, claims, verdict = gated.findings, gated.claims, gated.verdict
    timings["total"] = sum(v for k, v in timings.items())
    return AuditResult(target=target, snapshot=snapshot, files=ctx.files, findings=tuple(findings),
                       verdict=verdict, claims=claims, facts=ctx.facts,
                       timings={k: round(v, 4) for k, v in timings.items()},
                       tool_version=__version__, started_at=started)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, str, str]] = set()
    unique = []
    for f in findings:
        key = (*f.key, f.engine)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
