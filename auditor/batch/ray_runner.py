"""A batch on an existing Ray cluster (`ray start`, KubeRay): one Ray task per target.

Each task runs auditor.batch.task.run on a cluster worker and returns the rendered outputs; the driver
writes them to the batch folder, so the results are the same as the local pool's. A task whose worker
process or node dies is retried by Ray (max_retries: system failures); an audit that merely finds the
target bad is not an exception and is never retried (retry_exceptions=False). The nodes need the same
auditor version installed; an outcome from another version is refused.
"""
from __future__ import annotations

from collections.abc import Callable

from auditor import __version__
from auditor.batch import task as batch_task
from auditor.batch.plan import Job
from auditor.batch.task import Outcome
from auditor.errors import AuditorError

MAX_RETRIES = 3


def run(jobs: list[Job], on_outcome: Callable[[Outcome], None], *, address: str,
        task: Callable[[Job], Outcome] = batch_task.run, max_retries: int = MAX_RETRIES) -> None:
    try:
        import logging

        import ray
    except ModuleNotFoundError:
        raise AuditorError("--ray needs Ray: pip install 'auditor[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AuditorError(f"--ray {address}: cannot connect to the Ray cluster ({exc})") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(task)
        refs = {remote.remote(job): job for job in jobs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                on_outcome(_outcome(ray, ref, refs[ref], max_retries))
    finally:
        if started_here:
            ray.shutdown()


def _outcome(ray, ref, job: Job, max_retries: int) -> Outcome:  # type: ignore[no-untyped-def]
    try:
        outcome: Outcome = ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return batch_task.failed(job, f"the Ray task failed after {max_retries} retries: {type(exc).__name__}: {first}")
    if outcome.tool_version != __version__:
        return batch_task.failed(job, f"the Ray worker runs auditor {outcome.tool_version}, the driver {__version__}")
    return outcome
