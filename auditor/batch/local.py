"""The local pool: a ProcessPoolExecutor sized to the machine, one target per task, memory bounded per
worker (RLIMIT_AS set by the worker initializer).

A worker that dies (a native crash, the OOM killer, os._exit) breaks a ProcessPoolExecutor for every
task in flight. The targets that were in flight are then run again one per single-worker pool, so the
one that kills its worker again is reported as "could not be audited" and the others complete; the
rest of the batch continues on a fresh pool.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from auditor.batch import task as batch_task
from auditor.batch.plan import Job
from auditor.batch.task import Outcome

Task = Callable[[Job], Outcome]
OnOutcome = Callable[[Outcome], None]
MIN_MEMORY = 1 << 30


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def default_memory(workers: int) -> int:
    """An equal share of physical memory per worker (at least 1 GiB)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0
    return max(MIN_MEMORY, int(total * 0.9) // max(1, workers))


def limit_memory(limit_bytes: int) -> None:
    """Pool worker initializer: cap the address space, so a hostile target hits MemoryError, not the host."""
    if limit_bytes > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _died(job: Job, memory: int) -> Outcome:
    return batch_task.failed(job, f"the worker process died while auditing it (crash or kill; memory limit "
                                  f"{memory >> 20} MiB)")


def _pool(workers: int, memory: int) -> ProcessPoolExecutor:
    # spawn: no fork of a threaded parent; the children get the parent's sys.path
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=limit_memory, initargs=(memory,))


def _collect(fut: Future[Outcome], job: Job, on_outcome: OnOutcome) -> bool:
    """Report a finished task; False when its worker died (the pool is broken)."""
    try:
        on_outcome(fut.result())
    except BrokenProcessPool:
        return False
    except Exception as exc:  # noqa: BLE001 - e.g. an outcome that could not be pickled back
        on_outcome(batch_task.failed(job, f"internal error: {type(exc).__name__}: {exc}"))
    return True


def _run_until_broken(pending: deque[Job], workers: int, memory: int, task: Task,
                      on_outcome: OnOutcome) -> list[Job]:
    """Run from `pending` until it is empty or the pool breaks; returns the jobs in flight at the break."""
    with _pool(workers, memory) as pool:
        inflight: dict[Future[Outcome], Job] = {}
        suspects: list[Job] = []
        while pending or inflight:
            while pending and len(inflight) < workers:   # only `workers` in flight: a break names few suspects
                try:
                    inflight[pool.submit(task, pending[0])] = pending[0]
                except BrokenProcessPool:      # broke since the last wait: what is in flight is suspect
                    return list(inflight.values())
                pending.popleft()
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                job = inflight.pop(fut)
                if not _collect(fut, job, on_outcome):
                    suspects.append(job)
            if suspects:
                return suspects + list(inflight.values())
        return []


def _run_isolated(jobs: list[Job], workers: int, memory: int, task: Task, on_outcome: OnOutcome) -> None:
    """Each job in its own single-worker pool (up to `workers` at once): a crash affects only its job."""
    for start in range(0, len(jobs), workers):
        group = jobs[start:start + workers]
        pools = [_pool(1, memory) for _ in group]
        try:
            futures = [(p.submit(task, job), job) for p, job in zip(pools, group, strict=True)]
            for fut, job in futures:
                if not _collect(fut, job, on_outcome):
                    on_outcome(_died(job, memory))
        finally:
            for p in pools:
                p.shutdown(wait=True, cancel_futures=True)


def run(jobs: list[Job], on_outcome: OnOutcome, *, workers: int = 0, memory: int = -1,
        task: Task = batch_task.run) -> None:
    workers = workers or default_workers()
    memory = default_memory(workers) if memory < 0 else memory
    pending = deque(jobs)
    while pending:
        suspects = _run_until_broken(pending, workers, memory, task, on_outcome)
        if suspects:
            _run_isolated(suspects, workers, memory, task, on_outcome)
