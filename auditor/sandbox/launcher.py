"""Runs INSIDE the sandbox (never imported by the auditor): set the resource limits, keep stdout as the
result channel, then run the payload's `main(request, emit)`.

argv: launcher.py PAYLOAD.py LIMITS_JSON. The request is JSON on stdin. Every `emit(obj)` writes one JSON
line to the result channel; whatever the payload (or the code it loads) prints goes to stderr instead,
so it cannot forge result lines by printing. This only keeps honest output apart: the payload runs
untrusted code in this same process, so the parent treats every line as untrusted input.
"""
import json
import os
import resource
import runpy
import sys


def _limit(name: str, value: int) -> None:
    which = getattr(resource, name)
    _soft, hard = resource.getrlimit(which)
    soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
    new_hard = soft
    if name == "RLIMIT_CPU" and (hard == resource.RLIM_INFINITY or soft < hard):
        new_hard = soft + 1   # the soft limit sends SIGXCPU (named in the report), the hard one SIGKILL
    resource.setrlimit(which, (soft, new_hard))


def main() -> None:
    payload, limits = sys.argv[1], json.loads(sys.argv[2])
    for name, value in limits.items():
        _limit(name, int(value))
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace")
    os.dup2(2, 1)
    request = json.load(sys.stdin)
    sys.stdin.close()

    def emit(obj: object) -> None:
        channel.write(json.dumps(obj, ensure_ascii=True, default=str) + "\n")
        channel.flush()

    sys.path.insert(0, os.path.join(os.path.dirname(payload), "lib"))
    namespace = runpy.run_path(payload, run_name="sandbox_payload")
    namespace["main"](request, emit)
    channel.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)   # no atexit handlers of code the payload loaded


if __name__ == "__main__":
    main()
