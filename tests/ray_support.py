"""A real Ray cluster on loopback for the batch tests: `pytest_plugins = ["ray_support"]`.

`ray start --head --block` (and one `ray start --address --block` worker node) in a new process group,
free ports and its own temp folder, so two test processes can each run a cluster; stopped at the end
by signalling those process groups only (never `ray stop`, which stops every Ray on the machine).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    ports = ["--node-manager-port", str(_free_port()), "--object-manager-port", str(_free_port()),
             "--metrics-export-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port()),
             "--dashboard-agent-grpc-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port())]
    with open(log, "ab") as fh:
        return subprocess.Popen([_ray(), "start", *args, *ports, "--block", "--disable-usage-stats"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # daemons left in the group after `ray start` itself exited
    except ProcessLookupError:
        pass


def _wait_for_nodes(address: str, count: int, env: dict[str, str], timeout: float = 90) -> None:
    code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = subprocess.run([sys.executable, "-c", code, address], env=env, capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip().isdigit() and int(run.stdout.strip()) >= count:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not come up with {count} node(s)")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address (127.0.0.1:PORT) of a two-node Ray cluster: a head and one worker node, 1 CPU each."""
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))     # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start(["--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                   "--include-dashboard=false", "--ray-client-server-port", str(_free_port()),
                   "--temp-dir", str(temp), "--min-worker-port", "0", "--max-worker-port", "0"], env, temp / "head.log")
    procs = [head]
    try:
        _wait_for_nodes(address, 1, env)
        procs.append(_start(["--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                             "--min-worker-port", "0", "--max-worker-port", "0"], env, temp / "worker.log"))
        _wait_for_nodes(address, 2, env)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
