"""Helpers for the benchmarks: timing a command with its peak RSS, best of N runs."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

AUDITOR = [sys.executable, "-m", "auditor"]


# Linux keeps a process's peak RSS across exec: a command forked straight from this process (which may hold
# a 100k-file result) would report this process's peak as its own. The command is started by a small
# launcher instead, which times it and reads its peak RSS (wait4) and prints both.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_pid, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - start
sys.stderr.buffer.write(err[-500:])
print(elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of cmd; its output is discarded."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=True)
    elapsed, maxrss_kb, code = proc.stdout.split()
    if int(code) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit {code}: {proc.stderr[-500:]}")
    return float(elapsed), int(maxrss_kb) / 1024


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
