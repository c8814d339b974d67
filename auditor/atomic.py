"""Write outputs atomically: a temp file beside the target, then rename. Nothing half-written is left.

- The file gets the mode a plain `open()` would give it (0666 less the umask), not mkstemp's 0600.
- A temp file is removed on every exit path the process survives (exceptions, SIGTERM via the CLI's
  handler); one left by a killed run (its name carries the dead writer's pid) is removed by the next write.
- A FIFO or device is written through; a FIFO that nobody reads is an error, never a wait forever.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

Data = str | bytes | Iterable[str | bytes]     # a whole output, or its pieces as a renderer yields them

FIFO_WAIT_SECONDS = 10.0        # how long a reader has to open the FIFO


def current_umask() -> int:
    try:   # Linux: read it without changing it (os.umask would race with other threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Temp files of earlier writers of `path` that were killed (their pid is gone)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp$")
    try:
        siblings = list(os.scandir(path.parent or "."))
    except OSError:
        return
    for entry in siblings:
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def write_pieces(fh: BinaryIO, data: Data) -> None:
    """Write a whole output or its pieces (str as UTF-8), never holding more than one piece encoded."""
    if isinstance(data, (str, bytes)):
        data = (data,)
    for piece in data:
        fh.write(piece.encode("utf-8") if isinstance(piece, str) else piece)


def _write_through(path: Path, payload: Data) -> None:
    """/dev/null, /dev/stdout, a FIFO: a rename would replace the node itself, so write into it."""
    if stat.S_ISFIFO(path.stat().st_mode):
        deadline = time.monotonic() + FIFO_WAIT_SECONDS
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                if time.monotonic() > deadline:
                    raise OSError(errno.ENXIO, f"no process reads the FIFO (waited {FIFO_WAIT_SECONDS:.0f}s)") from None
                time.sleep(0.05)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as fh:
            write_pieces(fh, payload)
        return
    with open(path, "wb") as fh:
        write_pieces(fh, payload)


def write(path: str | Path, data: Data) -> None:
    """`data` may be an iterable of pieces: they go into the temp file as they come (flat memory)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        _write_through(path, data)
        return
    _remove_stale(path)
    fd, tmp = exclusive_temp(path.parent or Path("."), f".{path.name}.{os.getpid()}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            write_pieces(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


_EXCLUSIVE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def exclusive_temp(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """What tempfile.mkstemp guarantees (a new file, O_EXCL, mode 0600, a name no one can predict), without
    importing tempfile: it brings shutil, random, bz2 and lzma, ~6 ms of every run's start-up."""
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{os.urandom(8).hex()}{suffix}")
        try:
            return os.open(name, _EXCLUSIVE, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(folder))


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """mkdtemp with the mode mkdir would give (0777 less the umask), not 0700."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o777 & ~current_umask())
    return folder
