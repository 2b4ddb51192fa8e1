"""The Ray candidate pool against a real local cluster: same answers as local, deadlines, lost workers."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from sld.agent.run import run_agent
from sld.agent.state import AgentConfig
from sld.search import SplitArrays
from sld.search.candidates import Problem
from sld.search.engine import EngineConfig, make_folds
from sld.search.errors import ClusterUnavailable
from sld.search.pool import LocalPool, make_pool
from sld.search.proposals import Proposal
from sld.search.ray_pool import RayPool, connect, failed_candidate
from sld.search.stopping import StopPolicy
from sld.tasks import generic_task


def _problem() -> Problem:
    rng = np.random.default_rng(0)
    N = np.tile(np.geomspace(1e6, 1e9, 10), 2)
    groups = np.repeat(np.array(["a", "b"]), 10)
    scale = np.where(groups == "a", 30.0, 45.0)
    y = (2.0 + scale * N**-0.2) * (1 + 0.01 * rng.standard_normal(N.size))
    return Problem(("N",), N[:, None], y, groups, np.log(N), max_params=4)


def _comparable(candidates: list) -> list[dict[str, object]]:
    return [{k: v for k, v in c.as_record().items() if k != "seconds"} for c in candidates]


def test_ray_gives_the_same_answers_as_local(ray_driver: str) -> None:
    problem = _problem()
    task = generic_task(name="power", features=("N",), targets=("y",), group="g", max_params=4)
    rows = SplitArrays(problem.X, problem.y[:, None], problem.groups)
    engine = EngineConfig(backend="none", evolution_rounds=1, seed=3)
    stop = StopPolicy(budget_s=600, max_candidates=14)
    local = AgentConfig(engine=engine, stop=stop)
    ray = AgentConfig(engine=engine.model_copy(update={"executor": "ray", "ray_address": ray_driver}), stop=stop)
    (expected,) = run_agent(task, rows, None, local).outcomes
    (got,) = run_agent(task, rows, None, ray).outcomes
    assert len(got.state.candidates) == len(expected.state.candidates) >= 8
    assert _comparable(got.state.candidates) == _comparable(expected.state.candidates)
    assert got.best.expression == expected.best.expression
    assert got.best.validation_r2 == expected.best.validation_r2
    np.testing.assert_array_equal(got.fit.predict(got.law, problem.X, problem.groups),
                                  expected.fit.predict(expected.law, problem.X, problem.groups))


def test_factory_picks_the_executor() -> None:
    problem = _problem()
    folds = make_folds(problem, 0)
    assert isinstance(make_pool(problem, folds, EngineConfig()), LocalPool)
    assert isinstance(make_pool(problem, folds, EngineConfig(executor="ray")), RayPool)


def test_deadline_cancels_outstanding_tasks(ray_driver: str) -> None:
    problem = _problem()
    config = EngineConfig(executor="ray", ray_address=ray_driver, n_starts=50)
    proposals = [Proposal(f"E + A * N**(-alpha) + B * N**(-{k}/10)", source="family") for k in range(1, 40)]
    with make_pool(problem, make_folds(problem, 0), config) as evaluator:
        assert evaluator.capacity == 2  # one candidate per CPU of the 2-CPU cluster
        assert evaluator.evaluate(proposals, time.monotonic() - 1) == []  # nothing submitted past the deadline
        started = time.monotonic()
        done = evaluator.evaluate(proposals, started + 1.5)
        assert time.monotonic() - started < 6  # the budget holds: outstanding tasks are cancelled, not awaited
        assert len(done) < len(proposals)
        assert [c.expression for c in done] == [p.expression for p in proposals[: len(done)]] or done == []
        # The evaluator still works after a cancellation (fresh workers take the next tasks).
        (again,) = evaluator.evaluate(proposals[:1], time.monotonic() + 120)
        assert again.expression == proposals[0].expression and again.status in {"ok", "rejected", "failed"}


def test_lost_candidate_is_recorded_with_its_reason() -> None:
    proposal = Proposal("E + A * N**(-alpha)", source="family", family="power law", shared=("alpha",))
    candidate = failed_candidate(_problem(), proposal, "worker lost: WorkerCrashedError: died")
    assert candidate.status == "failed" and candidate.reason.startswith("worker lost")
    assert candidate.key and candidate.shared == ("alpha",) and candidate.family == "power law"


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the [ray] extra looks like
    with pytest.raises(ClusterUnavailable, match=r"pip install 'sld\[ray\]'"):
        connect("auto")


def test_import_sld_does_not_import_ray() -> None:
    import subprocess

    code = "import sys, sld, sld.cli, sld.search.engine, sld.agent.graph; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
