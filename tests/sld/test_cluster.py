"""Benchmark tasks, discovery and proxy sweeps on a real local Ray cluster, through the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sld.cli import main
from sld.commands.proxy import run_gpus
from sld.corpus.proxy.presets import get_preset

CLI = [sys.executable, "-c", "from sld.cli import main; main()"]
BENCH_TASKS = "parallel_scaling_law,data_constrained_scaling_law"


def _bench(tmp_path: Path, corpus: Path, name: str, *extra: str) -> dict[str, object]:
    out = tmp_path / f"{name}.json"
    args = ["bench", "--method", "sld", "--backend", "none", "--max-candidates", "6", "--seed", "0",
            "--tasks", BENCH_TASKS, "--corpus", str(corpus), "--json", str(out), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_two_task_bench_on_ray_matches_local(tmp_path: Path, shared_sldbench: Path, ray_driver: str) -> None:
    on_ray = _bench(tmp_path, shared_sldbench, "ray", "--executor", "ray", "--ray-address", ray_driver)
    local = _bench(tmp_path, shared_sldbench, "local")
    assert list(on_ray["tasks"]) == BENCH_TASKS.split(",")  # the task order, whichever finished first
    for task, score in local["tasks"].items():
        assert on_ray["tasks"][task]["law"] == score["law"]
        assert on_ray["tasks"][task]["r2"] == score["r2"]
        assert on_ray["tasks"][task]["candidates_evaluated"] == score["candidates_evaluated"]
    assert on_ray["mean_r2"] == local["mean_r2"]


def _descendants(root: int) -> list[tuple[int, str]]:
    """Return ``(pid, command line)`` of every process below ``root`` (read from /proc)."""
    parents: dict[int, int] = {}
    titles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += [(pid, titles.get(pid, "")) for pid in children]
        frontier += children
    return found


def _kill_one_busy_worker(head_pid: int, stop: threading.Event, killed: list[int]) -> None:
    """Kill (once) the first worker of the test's cluster seen fitting a candidate."""
    while not stop.is_set():
        for pid, title in _descendants(head_pid):
            if "ray::_evaluate_task" in title:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.02)


def test_discover_on_ray_survives_a_killed_worker(tmp_path: Path, ray_cluster: object) -> None:
    run_dir = tmp_path / "run"
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_busy_worker, args=(ray_cluster.pid, stop, killed))  # type: ignore[attr-defined]
    killer.start()
    try:
        result = subprocess.run(
            [*CLI, "discover", "--backend", "none", "--proposer", "offline", "--max-candidates", "16",
             "--run-dir", str(run_dir), "--executor", "ray", "--ray-address", ray_cluster.address],  # type: ignore[attr-defined]
            capture_output=True, text=True, timeout=300,
        )
    finally:
        stop.set()
        killer.join()
    assert result.returncode == 0, result.stderr[-3000:]
    assert killed, "no worker was caught fitting a candidate"
    # Plain progress (stderr is not a terminal): "TARGET: round K done: N candidates, ..." after every round.
    submitted = max(int(n) for n in re.findall(r"round \d+ done: (\d+) candidates", result.stderr))
    records = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert len(records) == submitted == 16  # every submitted candidate, the killed worker's too
    assert len({record["expression"] for record in records}) == 16
    assert all(record["status"] == "ok" or record["reason"] for record in records)
    assert "candidate cap reached: 16 candidates" in result.stdout + result.stderr  # the run ended normally


def _sweep(out: Path, address: str) -> list[str]:
    # The grid's two cheapest runs, trained in parallel on the 2-CPU cluster.
    return [*CLI, "proxy", "sweep", "--preset", "cpu-tiny", "--out", str(out), "--max-runs", "2", "--device", "cpu",
            "--executor", "ray", "--ray-address", address]


def test_killed_ray_sweep_resumes_without_losing_a_finished_run(tmp_path: Path, ray_cluster: object) -> None:
    pytest.importorskip("torch")
    address = ray_cluster.address  # type: ignore[attr-defined]
    out, log = tmp_path / "sweep", tmp_path / "first.log"
    rows = out / "experiments.runs"
    with open(log, "w") as stderr:
        first = subprocess.Popen(_sweep(out, address), stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    while not list(rows.glob("*.json")):
        assert first.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no run finished in time"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # the driver dies, the other run still training
    first.wait()
    finished = {path.name: path.read_text() for path in rows.glob("*.json")}

    # The rerun finds the cluster through RAY_ADDRESS (the flag's default), as a job on a cluster would.
    again = [arg for arg in _sweep(out, address) if arg not in ("--ray-address", address)]
    env = {**os.environ, "RAY_ADDRESS": address}
    resumed = subprocess.run(again, capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(finished)} of 2 runs already" in resumed.stderr
    for name, text in finished.items():  # not trained again: the row, its finish time too, is unchanged
        assert (rows / name).read_text() == text
    table = pd.read_parquet(out / "experiments.parquet")
    cheapest = [f"{path.stem}" for path in sorted(rows.glob("*.json"))]
    assert sorted(table["run_id"]) == cheapest and len(cheapest) == 2
    assert list(table["tokens"]) == sorted(table["tokens"])  # rows in the grid's order, not in finishing order


def test_gpu_preset_asks_one_gpu_per_run() -> None:
    assert run_gpus(get_preset("gpu-small"), "auto") == 1
    assert run_gpus(get_preset("gpu-small"), "cpu") == 0
    assert run_gpus(get_preset("cpu-tiny"), "auto") == 0
    assert run_gpus(get_preset("cpu-tiny"), "cuda") == 1
