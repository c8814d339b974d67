"""The pipeline: target -> Snapshot -> Inventory -> scanners -> findings -> verdict + claims."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from auditor import __version__, inventory, scanners, sources
from auditor.judge import policy, regions, waivers
from auditor.model import AuditResult, Finding, Options, Snapshot
from auditor.record import replace

FindingCallback = Callable[[Finding], None]


def audit(target: str, options: Options | None = None, *,
          progress: inventory.Progress | None = None,
          on_finding: FindingCallback | None = None) -> AuditResult:
    options = options or Options()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    chosen_policy = policy.load(options.policy)   # a bad policy fails before any work
    user_waivers = waivers.discover(options.waivers)   # so does a bad waivers file

    t = time.perf_counter()
    snapshot = sources.open_snapshot(target, options)
    timings["fetch"] = time.perf_counter() - t

    t = time.perf_counter()
    surveyed = inventory.survey(snapshot, options)
    timings["survey"] = time.perf_counter() - t
    collected = _Collector(on_finding)
    emit = collected.add

    t_hash = time.perf_counter()
    # The hashing threads release the GIL inside hashlib but must win it back between chunks; a short
    # switch interval keeps them from queueing behind the (Python-bound) scanners.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 0.0005))
    try:
        inv, ctx, ran = _scan_while_hashing(snapshot, surveyed, options, chosen_policy, progress, emit, timings)
    finally:
        sys.setswitchinterval(switch)
    timings["hashing"] = time.perf_counter() - t_hash   # overlaps the scanners
    for finding in inv.findings:
        emit(finding)
    if options.runtime:   # after the static audit: load the model in the sandbox (auditor.runtime)
        from auditor import runtime
        t = time.perf_counter()
        for finding in runtime.stage(snapshot, ctx.files, ctx.facts, ctx.regions):
            emit(finding)
        ran.add(runtime.NAME)
        timings["runtime"] = time.perf_counter() - t
    for finding in inventory.changed_since(surveyed, snapshot):   # after every read of the files
        emit(finding)

    findings = collected.findings()
    # overrides, waivers, claims, the policy's own requirements, then the verdict (policy.gate)
    gated = policy.gate(chosen_policy, findings, snapshot=snapshot, files=ctx.files, facts=ctx.facts,
                        scanners_ran=ran, extra_waivers=user_waivers)
    findings, claims, verdict = gated.findings, gated.claims, gated.verdict
    timings["total"] = time.perf_counter() - t_start
    return AuditResult(target=target, snapshot=snapshot, files=ctx.files, findings=tuple(findings),
                       verdict=verdict, claims=claims, facts=ctx.facts.to_dict(),
                       timings={k: round(v, 4) for k, v in timings.items()},
                       tool_version=__version__, started_at=started)


def _scan_while_hashing(snapshot: Snapshot, surveyed: inventory.Inventory, options: Options,
                        chosen_policy: policy.Policy, progress: inventory.Progress | None,
                        emit: FindingCallback, timings: dict[str, float],
                        ) -> tuple[inventory.Inventory, scanners.ScanContext, set[str]]:
    """Run every scanner while the files hash; the integrity scanner (last) waits for the hashes."""
    with inventory.Hashing(surveyed, snapshot, options, progress) as hashing:
        ctx = scanners.ScanContext(snapshot=snapshot, files=tuple(surveyed.files), options=options,
                                   regions=regions.of(chosen_policy.settings),
                                   hashing=lambda: tuple(hashing.result().files), contents=surveyed.contents)
        ran: set[str] = set()
        for module in scanners.load():
            name = getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1])
            t = time.perf_counter()
            for _name, finding in scanners.run(ctx, [module]):
                emit(finding)
            timings[f"scan.{name}"] = time.perf_counter() - t
            ran.add(name)
        inv = hashing.result()
    ctx.files = tuple(inv.files)
    return inv, ctx, ran


MAX_PER_FILE_RULE = 50     # one file repeating one problem: the rest are counted in a summary finding


class _Collector:
    """Findings as they come: duplicates dropped, repeats of one rule in one file capped (a hostile pickle
    can yield a million), and each cap summarised by a finding of the same rule and severity."""

    def __init__(self, on_finding: FindingCallback | None) -> None:
        self._on_finding = on_finding
        self._kept: list[Finding] = []
        self._seen: set[tuple[str, str, str, str, str]] = set()
        self._per_file_rule: dict[tuple[str, str], int] = {}
        self._worst_dropped: dict[tuple[str, str], Finding] = {}

    def add(self, finding: Finding) -> None:
        key = (*finding.key, finding.engine)
        if key in self._seen:
            return
        self._seen.add(key)
        where = (finding.file, finding.rule)
        count = self._per_file_rule.get(where, 0) + 1
        self._per_file_rule[where] = count
        if count > MAX_PER_FILE_RULE:
            worst = self._worst_dropped.get(where)
            if worst is None or finding.severity > worst.severity:
                self._worst_dropped[where] = finding
            return
        self._kept.append(finding)
        if self._on_finding:
            self._on_finding(finding)

    def findings(self) -> list[Finding]:
        summaries = [replace(worst, location="(more)", evidence=f"{self._per_file_rule[where] - MAX_PER_FILE_RULE} "
                             f"more {worst.rule} finding(s) in this file, not listed; the most severe: "
                             f"{worst.evidence[:300]}")
                     for where, worst in self._worst_dropped.items()]
        return sorted(self._kept + summaries, key=Finding.order)
