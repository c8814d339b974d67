"""Helpers for the benchmarks: timing a command with its peak RSS, best of N runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

AUDITOR = [sys.executable, "-m", "auditor"]


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of cmd; its output is discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit {code}: {proc.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def best(cmd: list[str], repeat: int = 3) -> tuple[float, float]:
    runs = [run(cmd) for _ in range(repeat)]
    return min(t for t, _ in runs), max(r for _, r in runs)


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Best wall time of calling fn() `repeat` times in this process."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def openssl() -> str:
    path = shutil.which("openssl")
    if not path:
        raise SystemExit("openssl is needed as the reference")
    return path


def workdir(name: str) -> Path:
    path = Path(__file__).resolve().parent / "out" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
