"""The sandbox (auditor.sandbox): real bubblewrap runs; what the child can see, reach and use."""
from __future__ import annotations

import base64
import marshal
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor import sandbox
from auditor.scanners import keras

# Skipped where the kernel refuses a sandbox, but never in CI (CI=true): there a missing sandbox must fail.
pytestmark = pytest.mark.skipif(not os.environ.get("CI") and bool(sandbox.unavailable_reason()),
                                reason=sandbox.unavailable_reason() or "ok")

SMALL = sandbox.SandboxLimits(wall_seconds=20, cpu_seconds=5, memory_bytes=512 * 1024**2, processes=16)

INSPECT = """
import os, socket
def main(request, emit):
    home = os.path.expanduser("~")
    readable = []
    for path in request["paths"]:
        try:
            with open(path) as fh:
                readable.append(fh.read())
        except OSError as exc:
            readable.append("error: " + type(exc).__name__)
    try:
        open("/model/new.txt", "w").write("x")
        model_write = "written"
    except OSError as exc:
        model_write = "error: %d" % exc.errno
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", request["port"]))
        connect = "connected"
    except OSError as exc:
        connect = "error: " + type(exc).__name__
    emit({"environ": dict(os.environ), "home": home, "uid": os.getuid(), "readable": readable,
          "model_write": model_write, "model": sorted(os.listdir("/model")), "connect": connect,
          "interfaces": [name for _i, name in socket.if_nameindex()]})
"""


def test_child_sees_no_secret_no_home_no_network_and_a_read_only_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret_value")
    model = tmp_path / "model"
    model.mkdir(mode=0o700)
    (model / "weights.bin").write_text("model bytes")
    secret = tmp_path / "not-mounted" / "credentials"
    secret.parent.mkdir()
    secret.write_text("host credentials")
    real_home = Path.home()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    outcome = sandbox.run(INSPECT, {"paths": ["/model/weights.bin", str(secret)], "port": server.getsockname()[1]},
                          binds=[(str(model), "/model")], limits=SMALL)
    with pytest.raises(TimeoutError):
        server.accept()      # nothing reached the host's loopback
    server.close()
    assert outcome.ok, outcome
    seen = outcome.lines[0]
    flat = repr(seen["environ"])
    assert "HF_TOKEN" not in flat and "hf_secret_value" not in flat and "aws_secret_value" not in flat
    assert not any(k.startswith("AWS_") for k in seen["environ"])
    assert seen["home"] == "/home/sandbox" != str(real_home)
    assert seen["uid"] != 0
    assert seen["readable"] == ["model bytes", "error: FileNotFoundError"]
    assert seen["model_write"] == "error: 30"          # EROFS
    assert seen["model"] == ["weights.bin"] and sorted(p.name for p in model.iterdir()) == ["weights.bin"]
    assert seen["connect"].startswith("error: ") and seen["interfaces"] == ["lo"]


def test_real_home_is_not_visible(tmp_path):
    home = Path.home()
    entries = {p.name for p in home.iterdir()} if home.is_dir() else set()
    payload = "import os\ndef main(request, emit):\n    p = request['home']\n" \
              "    emit(sorted(os.listdir(p)) if os.path.isdir(p) else None)\n"
    outcome = sandbox.run(payload, {"home": str(home)}, limits=SMALL)
    assert outcome.ok, outcome
    visible = set(outcome.lines[0] or [])
    # at most the folders that lead to the interpreter (e.g. ~/.pyenv), never the home's own files
    mounted = {Path(p).relative_to(home).parts[0] for p in sandbox.bwrap.python_paths() if p.startswith(f"{home}/")}
    assert visible <= mounted and not (entries - mounted) & visible


def test_memory_hog_is_stopped():
    payload = "def main(request, emit):\n    blocks = []\n    while True:\n        blocks.append(bytearray(16 << 20))\n"
    outcome = sandbox.run(payload, {}, limits=SMALL)
    assert outcome.status == "failed" and "memory" in outcome.detail


def test_fork_bomb_is_contained():
    payload = ("import os, time\n"
               "def main(request, emit):\n"
               "    children = 0\n"
               "    for _ in range(10000):\n"
               "        try:\n"
               "            if os.fork() == 0:\n"
               "                time.sleep(30)\n"
               "                os._exit(0)\n"
               "            children += 1\n"
               "        except OSError:\n"
               "            break\n"
               "    emit({'children': children})\n")
    started = time.monotonic()
    outcome = sandbox.run(payload, {}, limits=SMALL)
    assert time.monotonic() - started < 25
    assert outcome.lines and outcome.lines[0]["children"] < SMALL.processes   # RLIMIT_NPROC stopped it


def test_infinite_loop_is_killed_by_the_cpu_limit():
    limits = sandbox.SandboxLimits(cpu_seconds=2, wall_seconds=300)   # CPU seconds, not wall: a loaded machine
    outcome = sandbox.run("def main(request, emit):\n    while True:\n        pass\n", {}, limits=limits)
    assert outcome.status == "failed" and "CPU time limit" in outcome.detail


def test_sleeping_child_is_killed_by_the_wall_clock():
    limits = sandbox.SandboxLimits(wall_seconds=2, cpu_seconds=5)
    started = time.monotonic()
    outcome = sandbox.run("import time\ndef main(request, emit):\n    time.sleep(60)\n", {}, limits=limits)
    assert outcome.status == "timeout" and time.monotonic() - started < 10


def test_result_lines_are_bounded_and_strict():
    limits = sandbox.SandboxLimits(max_output_bytes=1000, wall_seconds=20)
    flood = sandbox.run("def main(request, emit):\n    while True:\n        emit('x' * 100)\n", {}, limits=limits)
    assert flood.status == "output-limit"
    forged = sandbox.run("import os\ndef main(request, emit):\n    os.write(1, b'not json\\n')\n", {}, limits=limits)
    assert forged.status == "ok" and forged.lines == ()    # prints go to stderr, not the result channel
    raw = sandbox.run("import sys\ndef main(request, emit):\n    sys.__stdout__.write('NaN\\n')\n", {},
                      limits=limits)
    assert raw.lines == ()


def test_items_get_their_own_budget_and_are_never_retried():
    payload = ("import time\n"
               "def main(request, emit):\n"
               "    for item in request:\n"
               "        if item == 'hang':\n"
               "            time.sleep(60)\n"
               "        emit({'item': item})\n")
    started = time.monotonic()
    results = sandbox.run_items(payload, ["a", "hang", "b", "c"], seconds_per_item=2)
    elapsed = time.monotonic() - started
    assert [r.get("item") for r in results] == ["a", None, "b", "c"]
    assert "timed out" in results[1]["error"]
    assert elapsed < 20    # one item's budget, not the whole batch's and not once more per retry


def test_keras_children_run_in_the_sandbox(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = '{"class_name": "Sequential"}'
        h5.attrs["keras_version"] = "2.15.0"
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    result = keras.read_h5_attrs([str(path)], 10_000)
    assert result == [{"versions": {"keras_version": "2.15.0"}, "model_config": '{"class_name": "Sequential"}'}]
    code = base64.b64encode(marshal.dumps(compile("__import__('os').system('id')", "<lambda>", "eval"))).decode()
    assert "system" in keras.decode_lambdas([code])[0]["names"]
    # the same readers, with the sandbox made unavailable, refuse to run rather than run unsandboxed
    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "no namespaces here")
    assert keras.read_h5_attrs([str(path)], 10_000)[0]["error"] == "sandbox unavailable: no namespaces here"
    assert "sandbox unavailable" in keras.decode_lambdas([code])[0]["error"]


def test_h5_reader_child_cannot_see_the_environment(tmp_path, monkeypatch):
    """The HDF5 reader's payload, run with an inspecting epilogue: same runner, same environment."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    payload = keras._H5_READER + "\nimport os\n_main = main\ndef main(request, emit):\n" \
                                 "    emit(dict(os.environ))\n"
    outcome = sandbox.run(payload, [], limits=SMALL)
    assert outcome.ok and "HF_TOKEN" not in outcome.lines[0] and outcome.lines[0]["HOME"] == "/home/sandbox"


def test_scanning_with_modelscan_and_h5py_spawns_no_uname(tmp_path):
    """The scanners import modelscan and h5py in this process only after seeding platform's processor."""
    import pickle

    import h5py
    import numpy as np
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with h5py.File(tmp_path / "model.h5", "w") as h5:
        h5.create_dataset("w", data=np.zeros(4))
    code = ("import sys\n"
            "seen = []\n"
            "sys.addaudithook(lambda event, args: seen.append(args[1]) if event == 'subprocess.Popen' else None)\n"
            "import auditor, platform\n"
            f"result = auditor.audit({str(tmp_path)!r})\n"
            "loaded = sorted(m for m in ('h5py', 'modelscan.modelscan') if m in sys.modules)\n"
            "uname = [argv for argv in seen if any('uname' in str(part) for part in argv)]\n"
            "print(repr(uname), repr(platform.processor()), ','.join(loaded))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PATH": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    uname, processor, loaded = proc.stdout.strip().split(" ", 2)
    assert (uname, processor, loaded) == ("[]", "''", "h5py,modelscan.modelscan")   # both imported by the scan


def test_child_that_closes_its_pipes_still_meets_the_wall_clock():
    payload = "import os, time\ndef main(request, emit):\n    os.closerange(0, 256)\n    time.sleep(60)\n"
    started = time.monotonic()
    outcome = sandbox.run(payload, {}, limits=sandbox.SandboxLimits(wall_seconds=2, cpu_seconds=5))
    assert outcome.status == "timeout" and time.monotonic() - started < 10
