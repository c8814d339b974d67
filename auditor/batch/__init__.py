"""Batch audits: many targets, one result each, a summary; resumable; a local pool or a Ray cluster.

- plan.py: the targets, their output names, and whether an earlier result is still current;
- task.py: the work of one target (the same in a pool worker and a Ray task);
- local.py: the ProcessPoolExecutor runner; ray_runner.py: the Ray runner;
- summary.py: summary.json and summary.md.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor import atomic
from auditor.batch import plan, summary
from auditor.batch.plan import Job
from auditor.batch.task import Outcome
from auditor.errors import AuditorError
from auditor.record import asdict

Tick = Callable[[Outcome | None, bool], None]   # (outcome, reused) after each target


def _entry(job: Job, state: dict[str, Any], reused: bool) -> dict[str, Any]:
    keys = ("status", "verdict", "counts", "origin", "files", "top", "error", "outputs", "seconds", "worker")
    return {"name": job.name, "target": job.target, "policy": job.policy, "line": job.line,
            **{k: state.get(k) for k in keys}, "reused": reused}


def _write_outcome(out: Path, job: Job, expected: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The outputs, then the state that vouches for them (so an interrupted batch never trusts half)."""
    files: dict[str, str] = {}
    for fmt, (suffix, data) in outcome.outputs.items():
        atomic.write(out / f"{job.name}{suffix}", data)
        files[fmt] = f"{job.name}{suffix}"
    fields = {k: v for k, v in asdict(outcome).items() if k != "outputs"}
    state = {**expected, **fields, "outputs": files}
    atomic.write(plan.state_path(out, job), json.dumps(state, indent=2, ensure_ascii=False) + "\n")
    return state


def run(jobs: list[Job], out: str | Path, *, workers: int = 0, ray_address: str = "", force: bool = False,
        memory: int = -1, tick: Tick | None = None,
        task: Callable[[Job], Outcome] | None = None) -> dict[str, Any]:
    """Audit every job not already current in OUT; write results, states, summary.json and summary.md."""
    out = Path(out)
    try:
        (out / plan.STATE_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditorError(f"--out {out}: {exc.strerror or exc}") from None
    started = time.perf_counter()
    entries: dict[str, dict[str, Any]] = {}
    expected = {job.name: plan.expected_state(job, plan.fingerprint(job.target)) for job in jobs}
    by_name = {job.name: job for job in jobs}
    todo = []
    for job in jobs:
        current = None if force else plan.is_current(out, job, expected[job.name])
        if current is not None:
            entries[job.name] = _entry(job, current, reused=True)
            if tick:
                tick(None, True)
        else:
            todo.append(job)

    def on_outcome(outcome: Outcome) -> None:
        job = by_name[outcome.name]
        entries[job.name] = _entry(job, _write_outcome(out, job, expected[job.name], outcome), reused=False)
        if tick:
            tick(outcome, False)

    from auditor.batch import task as batch_task
    work = task or batch_task.run
    if todo and ray_address:
        from auditor.batch import ray_runner
        ray_runner.run(todo, on_outcome, address=ray_address, task=work)
    elif todo:
        from auditor.batch import local
        local.run(todo, on_outcome, workers=workers, memory=memory, task=work)
    result = summary.build([entries[j.name] for j in jobs if j.name in entries],
                           runner=f"ray:{ray_address}" if ray_address else "local", seconds=time.perf_counter() - started)
    atomic.write(out / "summary.json", summary.to_json(result))
    atomic.write(out / "summary.md", summary.to_markdown(result))
    return result
