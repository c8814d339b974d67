"""Start-up and per-file overhead: `auditor scan` of small repos against picklescan and modelscan.

Run: python bench/bench_startup.py [--repeat 7] [--files 200]. Every tool runs as a whole process in
the same loop (auditor, picklescan, modelscan, `python -c pass` as the interpreter floor), so a load
spike hits them all; the figure is the best of N for each, and the ratios are taken from those.
Byte-code caching is on (an installed package has its .pyc files), whatever PYTHONDONTWRITEBYTECODE says.
Each figure is wall and CPU (user + system) seconds: on a shared machine CPU moves less with the load.
--instructions also runs each command once under valgrind's callgrind and gives the instructions it
executed: a figure a busy or drifting machine does not move (the wall time here moved by +-30% in a session).
A peer still running after --peer-timeout seconds is stopped and shown as "> N s" (modelscan ran for
16 minutes on 100,000 files without finishing). numpy is imported only to make a repo, so this process
stays small: a child's peak RSS starts from its parent's at the fork.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import AUDITOR, workdir

BIN = Path(sys.executable).parent


def make_small_repo(root: Path, files: int = 200) -> None:
    """A model repo of `files` small files: configs, tokenizers, tiny tensors, cards."""
    marker = root.parent / f"{root.name}.complete"   # outside the repo: it is not one of its files
    if marker.is_file():
        return
    import numpy as np
    from safetensors.numpy import save_file
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(files):
        folder = root / f"part{i // 1000:03d}" if files > 1000 else root   # a large repo has folders
        if i % 1000 == 0:
            folder.mkdir(exist_ok=True)
        kind = i % 4
        if kind == 0:
            (folder / f"config_{i}.json").write_text(json.dumps({"hidden_size": 64, "layer": i}))
        elif kind == 1:
            (folder / f"tokenizer_{i}.json").write_text(json.dumps({"vocab": {f"t{j}": j for j in range(500)}}))
        elif kind == 2:
            save_file({"w": rng.standard_normal((32, 32), dtype=np.float32)}, str(folder / f"t_{i}.safetensors"))
        else:
            (folder / f"README_{i}.md").write_text("# model card\n" * 20)
    marker.write_text(str(files))


def commands(repo: Path, baseline: str = "") -> dict[str, list[str]]:
    """The commands of one loop; `baseline` (a checkout of auditor) adds its scan, for a before/after ratio
    (-P: the current folder, maybe another checkout, must not come before PYTHONPATH)."""
    before = {"auditor scan (baseline)": ["env", f"PYTHONPATH={baseline}", sys.executable, "-P", "-m", "auditor", "scan",
                                          str(repo), "-q", "-o", "/dev/null"]} if baseline else {}
    return {**before,
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "auditor --version": [*AUDITOR, "--version"],
        "auditor scan": [*AUDITOR, "scan", str(repo), "-q", "-o", "/dev/null"],
        "picklescan": [str(BIN / "picklescan"), "-p", str(repo)],
        "modelscan": [str(BIN / "modelscan"), "-p", str(repo)],
    }


Run = tuple[float, float, float, bool]   # wall s, CPU s, peak RSS MB, stopped at the timeout


def run(cmd: list[str], timeout: float) -> Run:
    """One run; any exit code (modelscan exits 3 on "nothing to scan"); stopped after `timeout` s."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stopped = False
    while True:   # os.wait4 (not Popen.wait) reaps the child: it alone returns the child's rusage
        pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if not stopped and time.perf_counter() - start > timeout:
            proc.kill()
            stopped = True
        time.sleep(0.002)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stopped


def measure(cmds: dict[str, list[str]], repeat: int, timeout: float) -> dict[str, Run]:
    """Best wall and CPU time and the peak RSS of each command, the commands taken in turn `repeat` times;
    a command stopped at the timeout is not run again."""
    runs: dict[str, list[Run]] = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            if not any(r[3] for r in runs[name]):
                runs[name].append(run(cmd, timeout if name in PEERS else 3600))
    return {name: (min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs), any(r[3] for r in rs))
            for name, rs in runs.items()}


PEERS = ("picklescan", "modelscan")


def instructions(cmd: list[str]) -> int | None:
    """Instructions one run executes, counted by callgrind (None without valgrind). A script is run by this
    Python (valgrind runs ELF files), and a leading `env VAR=...` becomes the child's environment."""
    env = dict(os.environ)
    if cmd[0] == "env":
        assignments = [a for a in cmd[1:] if "=" in a and not a.startswith("-")]
        env.update(a.split("=", 1) for a in assignments)
        cmd = cmd[1 + len(assignments):]
    if cmd[0] != sys.executable:
        cmd = [sys.executable, *cmd]
    try:
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                              capture_output=True, text=True, env=env, timeout=900)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"Collected : (\d+)", proc.stderr)
    return int(found.group(1)) if found else None


def report_instructions(cmds: dict[str, list[str]]) -> None:
    counted = {name: instructions(cmd) for name, cmd in cmds.items()}
    if any(n is None for n in counted.values()):
        print("  (instructions: valgrind is not installed)")
        return
    fastest = min(counted[p] for p in PEERS)   # type: ignore[type-var]
    for name, n in counted.items():
        print(f"  {name:24s} {n / 1e6:8.0f} M instructions  {n / fastest:5.2f}x fastest peer")  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--files", type=int, nargs="*", default=[200])
    ap.add_argument("--repeat-large", type=int, default=1, help="runs for repos of 10,000 files or more")
    ap.add_argument("--baseline", default="", help="another checkout of auditor to time in the same loop")
    ap.add_argument("--peer-timeout", type=float, default=300, help="seconds before a peer is stopped")
    ap.add_argument("--instructions", action="store_true", help="also count each command's instructions (valgrind)")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for files in args.files:
        repo = workdir("startup") / f"repo-{files}"
        make_small_repo(repo, files)
        repeat = args.repeat if files < 10_000 else args.repeat_large
        found = measure(commands(repo, args.baseline), repeat, args.peer_timeout)
        fastest_peer = min(found[p][0] for p in PEERS)
        print(f"\n{files} files, best of {repeat} (load average {os.getloadavg()[0]:.1f}):")
        for name, (seconds, cpu, rss, stopped) in found.items():
            shown = f"> {seconds:5.1f} s (stopped)" if stopped else f"{seconds:6.3f} s"
            print(f"  {name:24s} {shown}  CPU {cpu:6.3f} s  {seconds / fastest_peer:5.2f}x fastest peer  "
                  f"{seconds / found['modelscan'][0]:5.2f}x modelscan  peak RSS {rss:4.0f} MB")
        if args.instructions and files < 10_000:
            report_instructions(commands(repo, args.baseline))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
