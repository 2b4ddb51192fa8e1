"""Fixtures shared by every test package."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ISOLATED_PREFIXES = ("SLD_", "HF_", "OPENAI_")
REPO = Path(__file__).resolve().parents[1]
# Read before any test isolates the environment: CI points SLD_CORPUS at the shared mirror.
_CORPUS_CANDIDATES = tuple(
    Path(path)
    for path in (os.environ.get("SLD_CORPUS"), REPO / "shared" / "sldbench", REPO.parent / "shared" / "sldbench")
    if path
)


@pytest.fixture
def shared_sldbench() -> Path:
    """The shared SLDBench mirror (read only); tests that need it skip where it is absent."""
    for candidate in _CORPUS_CANDIDATES:
        if (candidate / "parallel_scaling_law" / "train.parquet").is_file():
            return candidate.resolve()
    pytest.skip("shared/sldbench is not beside the repository and SLD_CORPUS is not set")


_RNSL_CANDIDATES = tuple(
    Path(path)
    for path in (os.environ.get("SLD_RNSL"), REPO / "shared" / "rnsl", REPO.parent / "shared" / "rnsl")
    if path
)


@pytest.fixture
def shared_rnsl() -> Path:
    """The shared rnsl benchmark folder (read only); tests that need it skip where it is absent."""
    for candidate in _RNSL_CANDIDATES:
        if (candidate / "benchmark.lang.csv").is_file():
            return candidate.resolve()
    pytest.skip("shared/rnsl is not beside the repository and SLD_RNSL is not set")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Remove SLD_*, HF_* and OPENAI_* variables and run each test in its own empty working directory."""
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RayCluster:
    """A Ray head node this test session started: its address and the pid of its ``ray start`` process."""

    address: str
    pid: int


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A real Ray head node on 127.0.0.1 with 2 CPUs, started once per session and stopped after."""
    pytest.importorskip("ray")
    # The session's cluster is private to it: no token (Ray's token file in ~/.ray is shared by every cluster
    # this user starts, so a concurrent `ray start` elsewhere would replace it). Clients inherit the setting.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    address = f"127.0.0.1:{_free_port()}"
    log = tmp_path_factory.mktemp("ray") / "head.log"
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus", "2",
               "--num-gpus", "0", "--node-ip-address", "127.0.0.1", "--port", address.split(":")[1],
               "--include-dashboard", "false", "--disable-usage-stats"]
    with open(log, "w") as output:
        head = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield RayCluster(address, head.pid)
    finally:
        # `ray start --block` stops the processes it started when it is terminated; its process group (its own
        # session) is ended too, so no worker of this cluster outlives the tests.
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)


@pytest.fixture
def ray_driver(ray_cluster: RayCluster) -> Iterator[str]:
    """This test process connected to the session's Ray cluster (disconnected after the test); its address."""
    import ray

    ray.init(address=ray_cluster.address)
    try:
        yield ray_cluster.address
    finally:
        ray.shutdown()
