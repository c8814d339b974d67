"""The bubblewrap command line of the sandbox: what is mounted, which namespaces, which identity."""
from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# System paths the interpreter and its native libraries need, all read-only. /etc is not mounted whole
# (it holds credentials and host configuration): only the dynamic linker's files and the time zone.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives",
             "/etc/nsswitch.conf")
# As root, the child runs under a fresh uid with no account, so neither its RLIMIT_NPROC count nor any
# file it could reach is shared with another user or another sandbox. It keeps one capability,
# CAP_DAC_READ_SEARCH, to read the (read-only) inputs whatever their modes; nothing else is mounted that
# it could read beyond the inputs, the interpreter and the paths above.
UID_RANGE = (2_000_000, 3_000_000)
KEPT_CAPABILITY = "dac_read_search"


def sandbox_uid() -> int:
    if os.geteuid() != 0:
        return 65534   # inside a user namespace the uid is cosmetic: it maps to the caller's own uid
    return UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])


def write_accounts(staging: Path, uid: int) -> None:
    (staging / "passwd").write_text(f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
                                    f"sandbox:x:{uid}:{uid}:sandbox:/home/sandbox:/usr/sbin/nologin\n"
                                    f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (staging / "group").write_text(f"root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n")
    (staging / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")


def python_paths() -> list[str]:
    """The interpreter's prefixes and site-packages folders (never the working directory or a home)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  str(Path(sys.executable).resolve().parent.parent)]
    candidates += [p for p in sys.path if p and p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    home = os.path.realpath(os.path.expanduser("~"))
    chosen: list[str] = []
    for path in sorted({os.path.realpath(c) for c in candidates if c and os.path.isdir(c)}, key=len):
        if path in ("/", home) or any(path == c or path.startswith(c.rstrip("/") + "/") for c in chosen):
            continue
        chosen.append(path)
    executable_dir = str(Path(sys.executable).parent)    # a venv's bin/ links to the base interpreter
    return chosen if _covered(executable_dir, chosen) else [*chosen, executable_dir]


def _covered(path: str, mounts: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == m or real.startswith(m.rstrip("/") + "/") for m in mounts)


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def command(bwrap: str, *, staging: Path, binds: Sequence[tuple[str, str]], uid: int, env: Mapping[str, str],
            python: Sequence[str]) -> list[str]:
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", "--clearenv"]
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/home/sandbox",
             "--ro-bind", str(staging), "/sandbox",
             "--ro-bind", str(staging / "passwd"), "/etc/passwd", "--ro-bind", str(staging / "group"), "/etc/group",
             "--ro-bind", str(staging / "hosts"), "/etc/hosts"]
    # after the private /tmp: bwrap mounts in order, so an interpreter (a venv) under /tmp stays visible
    for path in python_paths():
        args += ["--ro-bind", path, path]
    for host, inside in binds:
        args += ["--ro-bind", host, inside]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    args += ["--chdir", "/tmp"]
    if os.geteuid() == 0:
        # No user namespace: bwrap (root) drops every capability but these, setpriv switches to the fresh
        # uid, and the uid change clears all but the one kept capability.
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_" + KEPT_CAPABILITY.upper()):
            args += ["--cap-add", cap]
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        args += ["--", setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 f"--inh-caps=-all,+{KEPT_CAPABILITY}", f"--ambient-caps=+{KEPT_CAPABILITY}",
                 f"--bounding-set=-all,+{KEPT_CAPABILITY}", "--no-new-privs"]
    else:
        args += ["--unshare-user", "--uid", str(uid), "--gid", str(uid), "--cap-drop", "ALL", "--"]
    return args + list(python)
