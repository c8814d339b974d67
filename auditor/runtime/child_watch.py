"""Runs INSIDE the sandbox: a Python audit hook that records what the loaded model tries to do.

Recorded: name lookups, connects and sends, HTTP/URL opens, process spawns, file writes outside the
private tmp and home, imports of modules that are neither shipped with the model nor part of the
loaders' declared dependencies, and native library loads. Each event carries the call site (the
innermost frame in the model's own files, else the innermost frame outside this probe) and, where a
Python wrapper can see it, the outcome of the call. Events are streamed as they happen, so a model that
kills the interpreter cannot erase what was already seen.

An audit hook is an observer, not a barrier: code that reaches libc through ctypes bypasses it. The
barrier is the sandbox (no network, read-only model, nothing of the host writable).
"""
import builtins
import functools
import os
import socket
import subprocess
import sys
import threading
from typing import Any

MAX_EVENTS = 2000
ALLOWED_WRITE_ROOTS = ("/tmp/", "/home/sandbox/", "/dev/shm/")
ALLOWED_WRITE_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
NETWORK = {"socket.connect", "socket.sendto", "socket.sendmsg", "http.client.connect", "urllib.Request",
           "ftplib.connect", "smtplib.connect", "telnetlib.Telnet.open", "poplib.connect", "imaplib.open",
           "nntplib.connect"}
DNS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
       "socket.getnameinfo"}
SPAWN = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "os.startfile", "pty.spawn"}
FILE_CHANGES = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.truncate",
                "os.chmod", "os.chown", "shutil.rmtree", "shutil.move", "shutil.copyfile"}
WATCHED = NETWORK | DNS | SPAWN | FILE_CHANGES | {"open", "import", "ctypes.dlopen"}


class Watch:
    def __init__(self, emit, model_root: str, model_files: list, expected_modules: set) -> None:
        self.emit = emit
        self.model_root = model_root.rstrip("/") + "/"
        self.model_files = set(model_files)
        self.expected = expected_modules
        self.own_files = {os.path.abspath(__file__), "/sandbox/launcher.py", "/sandbox/payload.py"}
        self.step = ""
        self.count = 0
        self.seen_imports: set = set()
        self.local = threading.local()
        self.events: list = []

    # --- the hook -----------------------------------------------------------------------------
    def hook(self, event: str, args: tuple) -> None:
        if event not in WATCHED or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            detail = self._detail(event, args)
            if detail is not None:
                self._record(event, detail)
        except Exception:   # noqa: BLE001 - the observer must never change what the model does
            pass
        finally:
            self.local.busy = False

    def _detail(self, event: str, args: tuple):
        if event == "open":
            return self._write_target(args)
        if event == "import":
            return self._unexpected_import(args[0])
        if event in FILE_CHANGES:
            return self._changed_path(event, args)
        if event in DNS:
            return {"host": _text(args[0]) if args else "", "port": _text(args[1]) if len(args) > 1 else ""}
        if event in ("socket.connect", "socket.sendto"):
            return {"address": _address(args[1] if len(args) > 1 else None)}
        if event == "socket.sendmsg":
            return {"address": _address(args[1] if len(args) > 1 else None)}
        if event in NETWORK:
            return {"address": " ".join(_text(a) for a in args[:2])}
        if event in SPAWN:
            return {"command": _command(event, args)}
        if event == "ctypes.dlopen":
            return {"library": _text(args[0]) if args else ""}
        return None

    def _write_target(self, args: tuple):
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int) or path is None:
            return None
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
        if not writes:
            return None
        target = os.path.abspath(_text(path))
        return None if _allowed_write(target) else {"path": target, "mode": _text(mode if mode is not None else flags)}

    def _changed_path(self, event: str, args: tuple):
        """The path a file-system change alters: the destination of a copy or link, both ends of a move."""
        chosen = args[1:2] if event in ("shutil.copyfile", "os.symlink", "os.link") else \
            args[:2] if event in ("os.rename", "shutil.move") else args[:1]
        for path in chosen:
            if isinstance(path, (str, bytes)) and not _allowed_write(os.path.abspath(_text(path))):
                return {"path": _text(path)}
        return None

    def _unexpected_import(self, name: str):
        top = str(name).split(".", 1)[0]
        if top in self.expected or top in self.seen_imports:
            return None
        self.seen_imports.add(top)
        return {"module": str(name)}

    def _record(self, event: str, detail: dict) -> None:
        self.count += 1
        if self.count > MAX_EVENTS:
            if self.count == MAX_EVENTS + 1:
                self.emit({"type": "truncated", "after": MAX_EVENTS})
            return
        site = self._site()
        if event == "import" and not (site["in_model"] or site["via_pickle"]):
            return   # the loaders' own optional imports (try: import x) are not the model's doing
        record = {"type": "event", "event": event, "step": self.step, "site": site, **detail}
        self.events.append(record)
        self.emit(record)

    def outcome(self, mark: int, events: set, outcome: str) -> None:
        """Attach the outcome of a wrapped call to the events it raised."""
        for record in self.events[mark:]:
            if record["event"] in events and "outcome" not in record:
                record["outcome"] = outcome
                self.emit({"type": "outcome", "index": self.events.index(record), "outcome": outcome})

    # --- the call site ------------------------------------------------------------------------
    def _site(self) -> dict:
        """The innermost frame in the model's files, else the innermost outside this probe; via_pickle
        when an unpickler's find_class is on the stack (a pickle naming what to import)."""
        frame: Any = sys._getframe(3)
        fallback = None
        via_pickle = False
        depth = 0
        while frame is not None and depth < 300:
            filename = frame.f_code.co_filename
            via_pickle = via_pickle or frame.f_code.co_name == "find_class"
            model_file = self._model_file(filename)
            if model_file:
                return {"file": model_file, "line": frame.f_lineno, "in_model": True, "via_pickle": via_pickle}
            if fallback is None and filename not in self.own_files and not filename.startswith("<frozen"):
                fallback = {"file": filename, "line": frame.f_lineno}
            frame = frame.f_back
            depth += 1
        return {"file": "", "line": 0, **(fallback or {}), "in_model": False, "via_pickle": via_pickle}

    def _model_file(self, filename: str) -> str:
        if filename.startswith(self.model_root):
            return filename[len(self.model_root):]
        marker = "/transformers_modules/"
        if marker in filename:
            parts = filename.split(marker, 1)[1].split("/")
            for i in range(len(parts)):      # the cache adds a folder (and a revision) before the file
                candidate = "/".join(parts[i:])
                if candidate in self.model_files:
                    return candidate
            return parts[-1]
        return ""

    # --- outcomes of the calls Python code makes through the standard library -----------------
    def install(self) -> None:
        sys.addaudithook(self.hook)
        for owner, name, events in ((socket.socket, "connect", {"socket.connect"}),
                                    (socket.socket, "connect_ex", {"socket.connect"}),
                                    (socket.socket, "sendto", {"socket.sendto"}),
                                    (socket, "getaddrinfo", DNS), (socket, "gethostbyname", DNS),
                                    (socket, "gethostbyname_ex", DNS), (socket, "gethostbyaddr", DNS),
                                    (os, "system", {"os.system"}), (subprocess.Popen, "__init__", {"subprocess.Popen"}),
                                    (builtins, "open", {"open"}), (os, "open", {"open"})):
            setattr(owner, name, self._observed(getattr(owner, name), events))

    def _observed(self, function, events: set):
        watch = self

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            mark = len(watch.events)
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                watch.outcome(mark, events, f"failed: {type(exc).__name__}: {str(exc)[:200]}")
                raise
            watch.outcome(mark, events, "succeeded" if not isinstance(result, int) or result == 0
                          else f"returned {result}")
            return result
        return wrapper


def _allowed_write(path: str) -> bool:
    path = os.path.normpath(path)
    return path in ALLOWED_WRITE_FILES or path in ("/tmp", "/home/sandbox") or \
        (path + "/").startswith(ALLOWED_WRITE_ROOTS) and ".." not in path


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")[:500]
    return str(value)[:500]


def _address(value) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        return f"{_text(value[0])}:{_text(value[1])}"
    return _text(value)


def _command(event: str, args: tuple) -> str:
    if event == "subprocess.Popen" and len(args) > 1:
        argv = args[1]
        return " ".join(_text(a) for a in argv) if isinstance(argv, (list, tuple)) else _text(argv)
    if event in ("os.exec", "os.posix_spawn", "os.spawn") and len(args) > 1:
        argv = args[1] if event != "os.spawn" else args[2] if len(args) > 2 else args[1]
        return " ".join(_text(a) for a in argv) if isinstance(argv, (list, tuple)) else _text(argv)
    return _text(args[0]) if args else event
