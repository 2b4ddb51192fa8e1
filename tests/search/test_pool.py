"""The local candidate pool: results in proposal order, busy workers stopped at the deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

import sld.search.pool as pool_module
from sld.search.candidates import Candidate, Problem, law_from_proposal
from sld.search.engine import EngineConfig, make_folds
from sld.search.expressions import Law
from sld.search.pool import LocalPool, make_pool
from sld.search.proposals import Proposal


def _problem() -> Problem:
    N = np.geomspace(1e6, 1e10, 25)
    return Problem(("N",), N[:, None], 1.7 + 400 * N**-0.3, np.full(N.size, "g"), np.log(N), max_params=6)


def _slow_evaluate(
    problem: Problem, folds: object, config: object, proposal: Proposal, law: Law | None = None
) -> Candidate:
    if proposal.expression.startswith("slow"):
        time.sleep(30)
    return Candidate(proposal.expression, source=proposal.source, status="ok", objective=0.1)


def test_workers_busy_past_the_deadline_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "evaluate_one", _slow_evaluate)  # forked workers inherit the patch
    problem = _problem()
    with make_pool(problem, make_folds(problem, 0), EngineConfig(workers=2, backend="none")) as pool:
        started = time.monotonic()
        results = pool.evaluate([Proposal("fast a"), Proposal("slow b"), Proposal("slow c")], started + 2)
        assert time.monotonic() - started < 10
        assert [c.expression for c in results] == ["fast a"]
        # A later batch gets fresh workers.
        again = pool.evaluate([Proposal("fast d"), Proposal("fast e")], time.monotonic() + 20)
        assert [c.expression for c in again] == ["fast d", "fast e"]


def test_in_process_and_worker_pools_give_the_same_candidates() -> None:
    problem = _problem()
    folds = make_folds(problem, 0)
    proposals = [Proposal("E + A * (N / 1e8)**(-alpha)"), Proposal("A * (N / 1e8)**(-alpha)")]
    deadline = time.monotonic() + 120
    with LocalPool(problem, folds, EngineConfig(backend="none", n_starts=2)) as one:
        alone = one.evaluate(proposals, deadline)
    with LocalPool(problem, folds, EngineConfig(backend="none", n_starts=2, workers=2)) as two:
        parallel = two.evaluate(proposals, deadline)
    assert [(c.expression, c.objective) for c in alone] == [(c.expression, c.objective) for c in parallel]
    assert alone[0].status == "ok"


def _law_received(
    problem: Problem, folds: object, config: object, proposal: Proposal, law: Law | None = None
) -> Candidate:
    # Whether the canonical key came computed (the main process keyed the law to de-duplicate it) is the rationale.
    keyed = law is not None and "canonical_key" in vars(law)
    key = law.canonical_key if law is not None else "not sent"
    return Candidate(proposal.expression, source=proposal.source, status="ok", key=key, rationale=str(keyed))


def test_workers_get_the_law_this_process_parsed_and_none_for_text_that_does_not_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "evaluate_one", _law_received)  # forked workers inherit the patch
    problem = _problem()
    proposals = [Proposal("E + A * (N / 1e8)**(-alpha)"), Proposal("E + (")]
    expected = law_from_proposal(proposals[0], problem.variables).canonical_key  # as `deduplicate` keys it
    with LocalPool(problem, make_folds(problem, 0), EngineConfig(backend="none", workers=2)) as pool:
        received = pool.evaluate(proposals, time.monotonic() + 60)
    assert [(c.key, c.rationale) for c in received] == [(expected, "True"), ("not sent", "False")]


def test_an_unknown_executor_is_refused() -> None:
    config = EngineConfig.model_construct(executor="dask")  # bypasses the Literal check, as a stale config could
    with pytest.raises(ValueError, match=r"Unknown executor 'dask'\. Known: local, ray"):
        make_pool(_problem(), [], config)


def test_the_compiled_fitting_code_is_loaded_before_workers_fork_from_this_process():
    import subprocess
    import sys

    # A fresh process: in this one, earlier tests' fits have loaded the code already.
    script = (
        "from sld.search import lm_iteration as m\n"
        "from sld.search.pool import load_evaluation_code\n"
        "steps = (m._compiled_steps, m._compiled_updates, m._compiled_normals, m._compiled_joint_normals)\n"
        "print([bool(s.signatures) for s in steps])\n"
        "load_evaluation_code()\n"
        "print([bool(s.signatures) for s in steps])\n"
    )
    before, after = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split("\n")[:2]
    # Loaded here, the machine code of every step of a plain and a shared fit is inherited by forked workers.
    assert before == str([False] * 4) and after == str([True] * 4)


def test_feed_reports_each_candidate_in_proposal_order_as_soon_as_those_before_it_are_done() -> None:
    proposals = [Proposal(name) for name in "abcde"]
    # Finishing order of the two workers: b before a, then c; d is cut by the deadline (never finishes), e is done.
    arrivals = iter([1, 0, 2, 4, None])
    submitted: list[int] = []
    log: list[tuple[str, tuple[int, ...]]] = []

    def submit(index: int, proposal: Proposal) -> None:
        submitted.append(index)

    def next_done(timeout: float) -> tuple[int, Candidate] | None:
        index = next(arrivals)
        if index is None:
            return None
        return index, Candidate(proposals[index].expression, source="family", status="ok", objective=0.1)

    def report(candidate: Candidate) -> None:
        log.append((candidate.expression, tuple(submitted)))

    finished, running = pool_module.feed(proposals, time.monotonic() + 60, 2, submit, next_done, report)
    assert [c.expression for c in finished] == ["a", "b", "c", "e"]
    assert running == 1  # d, still running when next_done gave up
    # a and b are reported once a is back (before d is submitted), c at once; e, behind the cut d, at the end.
    assert log == [("a", (0, 1, 2)), ("b", (0, 1, 2)), ("c", (0, 1, 2, 3)), ("e", (0, 1, 2, 3, 4))]
