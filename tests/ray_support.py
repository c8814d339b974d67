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
    # explicit ports: no fixed default shared by two clusters, and no port files the raylet times out on
    ports = ["--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
             "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port())]
    with open(log, "ab") as fh:
        return subprocess.Popen([_ray(), "start", *args, *ports, "--block", "--disable-usage-stats"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_priority)


def _priority() -> None:
    """Ray's raylet waits only 30 s for its agent to start: on a busy machine give the cluster the CPU first."""
    if os.geteuid() == 0:
        os.nice(-10)


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


def _wait_for_nodes(address: str, count: int, env: dict[str, str], procs: list[subprocess.Popen[bytes]],
                    timeout: float = 120) -> None:
    code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"`ray start` exited with {dead[0].returncode} (see its log in the cluster temp dir)")
        try:
            run = subprocess.run([sys.executable, "-c", code, address], env=env, capture_output=True, text=True,
                                 timeout=30)
        except subprocess.TimeoutExpired:
            continue
        if run.returncode == 0 and run.stdout.strip().isdigit() and int(run.stdout.strip()) >= count:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not come up with {count} node(s)")


def start_cluster(temp: Path, env: dict[str, str], cpus: int = 1) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A head and one worker node; retried (a loaded machine can miss Ray's 30 s agent start-up window)."""
    last: Exception | None = None
    for _attempt in range(3):
        port = _free_port()
        address = f"127.0.0.1:{port}"
        procs = [_start(["--head", "--port", str(port), "--num-cpus", str(cpus), "--include-dashboard=false",
                         "--temp-dir", str(temp)], env, temp / "head.log")]
        try:
            _wait_for_nodes(address, 1, env, procs)
            procs.append(_start(["--address", address, "--num-cpus", str(cpus)], env, temp / "worker.log"))
            _wait_for_nodes(address, 2, env, procs)
            return address, procs
        except RuntimeError as exc:
            last = exc
            for proc in reversed(procs):
                _stop(proc)
    raise RuntimeError(f"no Ray cluster after 3 attempts: {last}")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address (127.0.0.1:PORT) of a two-node Ray cluster: a head and one worker node, 1 CPU each."""
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))     # short: Ray's socket paths have a length limit
    # Under load (CI runs two test workers on two cores) the raylet gives up on its agents after 30 s.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_register_timeout_seconds": "180",
           "RAY_agent_register_timeout_ms": "180000",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        address, procs = start_cluster(temp, env)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
