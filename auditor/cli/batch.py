"""`auditor batch TARGETS --out DIR`: audit many models, one result each, and a summary."""
from __future__ import annotations

import argparse
import sys

from auditor import reports
from auditor.cli.args import Command, echo, folder_path


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", metavar="TARGETS")
    p.add_argument("--out", dest="out_dir", required=True, type=folder_path, help="Folder for the results.")
    p.add_argument("--workers", default=0, type=int, help="Local worker processes (0 = one per CPU). [default: %(default)s]")
    p.add_argument("--ray", dest="ray_address", default="", help="Run on this Ray cluster (host:port, or auto).")
    p.add_argument("--policy", default="default", help="Policy for targets whose line names none. [default: %(default)s]")
    p.add_argument("--format", dest="formats", action="append", default=[], choices=sorted(reports.FORMATS),
                   help="Also write these formats (JSON is always written).")
    p.add_argument("--endpoint", default="", help="Hub endpoint or mirror URL for hf:// targets.")
    p.add_argument("--memory", default=-1, type=int,
                   help="Address-space limit per local worker in MiB (-1 = an equal share of RAM, 0 = none). [default: %(default)s]")
    p.add_argument("--no-modelscan", action="store_true", help="Do not run modelscan as a second engine.")
    p.add_argument("--force", action="store_true", help="Audit every target again, even when its result is current.")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress and no summary on stderr.")


def run(targets: str, out_dir: str, workers: int, ray_address: str, policy: str, formats: tuple[str, ...],
            endpoint: str, memory: int, no_modelscan: bool, force: bool, quiet: bool) -> int:
    """Audit every target in TARGETS (a file with one `TARGET [POLICY]` per line, or a folder of models).

    Exit 0 when all pass or warn, 1 when any fails, 2 when any could not be audited."""
    from auditor import batch
    from auditor.batch import plan
    from auditor.batch import summary as batch_summary
    from auditor.judge import policy as policies

    chosen = ("json", *[f for f in formats if f != "json"])
    jobs = plan.read_targets(targets, policy=policy, formats=chosen, endpoint=endpoint,
                             engines=("auditor",) if no_modelscan else ("auditor", "modelscan"))
    for pol in sorted({j.policy for j in jobs}):
        policies.load(pol)                 # a bad policy fails before any work
    with _progress(quiet, len(jobs)) as tick:
        result = batch.run(jobs, out_dir, workers=workers, ray_address=ray_address, force=force,
                           memory=memory if memory <= 0 else memory << 20, tick=tick)
    if not quiet:
        c = result["counts"]
        echo(f"{result['total']} target(s): {c['fail']} fail, {c['error']} could not be audited, "
             f"{c['warn']} warn, {c['pass']} pass ({result['reused']} reused); {out_dir}/summary.md", err=True)
        for e in result["targets"]:
            if e["status"] == "error":
                echo(f"  could not audit {e['target']}: {e['error']}", err=True)
    return batch_summary.exit_code(result)


class _progress:
    """One progress bar for the whole batch on stderr (nothing when quiet or not a terminal)."""

    def __init__(self, quiet: bool, total: int) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.total = total

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
        self.bar = Progress("batch", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("batch", total=self.total)

        def tick(_outcome, _reused) -> None:  # type: ignore[no-untyped-def]
            self.bar.advance(task)
        return tick

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(None, None, None)


command = Command("batch", run, _arguments)
