"""The work of one target, the same in a pool worker and in a Ray task: audit, render, report back.

It never raises for a target-level problem: a bad target becomes an `error` outcome (could not be
audited) with the reason; the driver writes the rendered outputs.
"""
from __future__ import annotations

import traceback
from typing import Any

from auditor import __version__
from auditor.batch.plan import Job
from auditor.errors import AuditorError
from auditor.record import field, record


@record
class Outcome:
    name: str
    target: str
    status: str                                   # audited | error
    verdict: str = ""                             # pass | warn | fail ("" when not audited)
    counts: dict[str, int] = field(default_factory=dict)
    origin: str = ""
    files: int = 0
    top: list[str] = field(default_factory=list)  # the first unwaived findings, for the summary
    error: str = ""
    result_digest: str = ""
    tool_version: str = __version__
    outputs: dict[str, tuple[str, Any]] = field(default_factory=dict)   # format -> (file suffix, str | bytes)
    seconds: float = 0.0
    worker: str = ""                              # host:pid that ran it


def failed(job: Job, reason: str) -> Outcome:
    return Outcome(name=job.name, target=job.target, status="error", error=" ".join(reason.split()))


def _origin(facts: dict[str, Any]) -> str:
    eff = (facts.get("provenance") or {}).get("effective_origin") or {}
    org, country = eff.get("org") or "", eff.get("country") or ""
    return f"{org} ({country})" if org and country else org or country or "unknown"


def run(job: Job) -> Outcome:
    import os
    import socket
    import time

    from auditor import reports
    from auditor.model import Options, Severity
    from auditor.pipeline import audit
    from auditor.reports import json_report

    started = time.perf_counter()
    where = f"{socket.gethostname()}:{os.getpid()}"
    try:
        options = Options(policy=job.policy, endpoint=job.endpoint, engines=job.engines, workers=1)
        result = audit(job.target, options)
        outputs: dict[str, tuple[str, Any]] = {}
        for fmt in job.formats:
            module = reports.get(fmt)
            outputs[fmt] = (getattr(module, "EXTENSION", f".{fmt}"), module.render(result))
    except AuditorError as exc:
        return _timed(failed(job, str(exc)), started, where)
    except MemoryError:
        return _timed(failed(job, "out of memory in the worker (raise --memory)"), started, where)
    except Exception as exc:  # noqa: BLE001 - one target's crash must not stop the batch
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        at = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
        return _timed(failed(job, f"internal error: {type(exc).__name__}: {exc}{at}"), started, where)
    digest = json_report.digest(json_report.to_dict(result))   # the same as the rendered JSON's `digest`
    unwaived = [f for f in result.findings if not f.waived and f.severity > Severity.INFO]
    return _timed(Outcome(
        name=job.name, target=job.target, status="audited", verdict=result.verdict.decision,
        counts=dict(result.verdict.counts), origin=_origin(result.facts), files=len(result.files),
        top=[f"[{f.severity.label}] {f.rule} {f.file}".rstrip() for f in unwaived[:3]],
        result_digest=digest, outputs=outputs), started, where)


def _timed(outcome: Outcome, started: float, where: str) -> Outcome:
    import time
    outcome.seconds = round(time.perf_counter() - started, 4)
    outcome.worker = where
    return outcome
