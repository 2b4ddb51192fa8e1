"""Fixtures of the report, compare and gate tests: small finished runs on synthetic data, made once a session."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sld.agent.run import run_agent
from sld.search import SplitArrays
from sld.tasks import generic_task, get_task
from tests.sld.report_data import QUICK, FinishedRun, power_law_frame, write_sft_corpus


@pytest.fixture(scope="session", autouse=True)
def single_threaded_blas() -> Iterator[None]:
    """Fit on one BLAS thread, as the CLI does (many tiny solves: threads only add contention)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """Return a finished discovery on user data (CSV files, 3 groups, one feature), run once per session."""
    root = tmp_path_factory.mktemp("user_run")
    train = power_law_frame(("a", "b", "c"), np.geomspace(1e6, 1e9, 10), seed=0)
    test = power_law_frame(("a", "b", "c"), np.array([4e9, 1e10]), seed=1)
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    task = generic_task(name="train", features=["N"], targets=["loss"], group="model", max_params=3)
    arrays = [SplitArrays(frame[["N"]].to_numpy(float), frame["loss"].to_numpy(float), frame["model"].to_numpy(str))
              for frame in (train, test)]
    run_agent(task, arrays[0], arrays[1], QUICK, run_dir=root / "run",
              data_paths={"train": str(root / "train.csv"), "test": str(root / "test.csv")})
    return FinishedRun(run_dir=root / "run", root=root)


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """Return a finished discovery on a synthetic sft_scaling_law corpus (with published anchors beside it)."""
    from sld.tasks.data import load_task_splits

    root = tmp_path_factory.mktemp("sft_run")
    corpus = write_sft_corpus(root)
    task = get_task("sft_scaling_law")
    train, test = load_task_splits(task, corpus=corpus)
    run_agent(task, train, test, QUICK, run_dir=root / "runs" / task.name)
    return FinishedRun(run_dir=root / "runs" / task.name, root=root, corpus=corpus)
