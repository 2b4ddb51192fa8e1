"""Candidate pools: evaluate batches of proposals for one problem within a deadline, in-process or in processes.

A pool is built from ``(problem, folds, config)`` by :func:`make_pool`, which picks the implementation named by
``config.executor``; the discovery loop only sees the :class:`CandidatePool` interface (context-managed,
``evaluate(proposals, deadline, report=None) -> list[Candidate]``). The local implementation runs in this process with
``workers=1`` and in a :mod:`multiprocessing` pool otherwise; the Ray implementation (``search/ray_pool.py``)
runs candidates as Ray tasks on a cluster.

Example
-------
>>> import time
>>> import numpy as np
>>> from sld.search.candidates import Problem
>>> from sld.search.engine import EngineConfig, make_folds
>>> from sld.search.proposals import Proposal
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> config = EngineConfig(backend="none", n_starts=2)
>>> with make_pool(problem, make_folds(problem, 0), config) as pool:
...     [c.status for c in pool.evaluate([Proposal("E + A * (N / 1e8)**(-alpha)")], time.monotonic() + 60)]
['ok']
"""

from __future__ import annotations

import functools
import queue
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sld.search.candidates import Candidate, Problem, evaluate_proposal, parsed_law
from sld.search.proposals import Proposal
from sld.search.selection import Fold, extrapolation_folds

if TYPE_CHECKING:
    from types import TracebackType

    from sld.search.engine import EngineConfig
    from sld.search.expressions import Law


class CandidatePool(Protocol):
    """Evaluates batches of proposals of one problem; closing it releases its workers.

    How many run at once is the pool's own affair (one per worker or cluster CPU, kept busy by `feed`).
    """

    def evaluate(
        self, proposals: Sequence[Proposal], deadline: float, report: Callable[[Candidate], None] | None = None
    ) -> list[Candidate]:
        """Evaluate proposals until ``deadline`` (``time.monotonic()``); return the finished ones in order.

        ``report``, if given, receives each finished candidate in that order as soon as it and every proposal
        before it are done (the run log's writer), instead of after the last one.
        """
        ...

    def __enter__(self) -> CandidatePool: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


def evaluate_one(
    problem: Problem, folds: Sequence[Fold], config: EngineConfig, proposal: Proposal, law: Law | None = None
) -> Candidate:
    """Fit and validate one proposal with the search's settings (what every pool runs per proposal).

    ``law`` is the proposal parsed by the pool's process (`sld.search.candidates.parsed_law`), if it parses.
    """
    candidate, _ = evaluate_proposal(
        problem, proposal, list(folds), config=config.fit_config(), complexity_penalty=config.complexity_penalty,
        law=law,
    )
    return candidate


def feed(
    proposals: Sequence[Proposal],
    deadline: float,
    capacity: int,
    submit: Callable[[int, Proposal], None],
    next_done: Callable[[float], tuple[int, Candidate] | None],
    report: Callable[[Candidate], None] | None = None,
) -> tuple[list[Candidate], int]:
    """Feed proposals to ``capacity`` workers in order until the deadline: the one loop of every pool.

    One proposal per idle worker is submitted (nothing waits in a queue at the deadline, so the work a deadline
    cuts is only what is already running). ``submit(index, proposal)`` starts one; ``next_done(timeout)`` returns
    the next finished ``(index, candidate)``, or ``None`` when ``timeout`` seconds pass first. ``report(candidate)``
    gets the finished candidates in proposal order, each once it and all proposals before it are done (those
    behind one the deadline cut, at the end).

    Returns
    -------
    finished : list of Candidate
        In proposal order.
    running : int
        Submitted proposals still running when the deadline passed (the pool stops them).
    """
    waiting = list(enumerate(proposals))[::-1]
    running = 0
    finished: dict[int, Candidate] = {}
    reported = 0  # proposals 0 .. reported - 1 are finished and reported

    def report_ready() -> None:
        nonlocal reported
        while reported in finished:
            if report is not None:
                report(finished[reported])
            reported += 1

    while waiting or running:
        while waiting and running < capacity and time.monotonic() < deadline:
            submit(*waiting.pop())
            running += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not running:
            break
        result = next_done(remaining)
        if result is None:
            break
        running -= 1
        finished[result[0]] = result[1]
        report_ready()
    ordered = [finished[index] for index in sorted(finished)]
    if report is not None:
        for candidate in ordered[reported:]:
            report(candidate)
    return ordered, running


# Worker processes receive the problem once (pool initializer) instead of with every task.
_WORKER_CONTEXT: dict[str, object] = {}


@functools.cache
def load_evaluation_code() -> None:
    """Evaluate a tiny grouped problem once in this process, so that forked workers inherit the loaded code.

    A candidate's first evaluation in a process loads numba's compiled fitting code from its cache and the
    modules the evaluation imports lazily: 1.4 s per worker, paid again by every pool (one per target). Workers
    fork from this process, so when it has loaded them they start warm (a first fit 1.4 s -> 5 ms); the main
    process loads them anyway for the final refit. Once per process: loaded, the code stays.
    """
    from sld.search.fitting import FitConfig

    examples = np.geomspace(1e6, 1e9, 12)
    groups = np.array(["a", "b"] * 6)
    problem = Problem(("N",), examples[:, None], 2 + 30 * examples**-0.2, groups, np.log(examples), max_params=3)
    folds = extrapolation_folds(problem.order, problem.groups, seed=0)
    for shared in ((), ("alpha",)):
        proposal = Proposal("E + A*(N/1e6)**(-alpha)", shared=shared)
        evaluate_proposal(problem, proposal, folds, config=FitConfig(n_starts=2), complexity_penalty=0.0)


def _init_worker(problem: Problem, folds: list[Fold], config: EngineConfig) -> None:
    from sld.search.fitting import one_blas_thread

    # Each worker solves tiny systems; one BLAS thread per process avoids oversubscribing the cores.
    one_blas_thread()
    _WORKER_CONTEXT.update(problem=problem, folds=folds, config=config)


def _evaluate_in_worker(index: int, proposal: Proposal, law: Law | None) -> tuple[int, Candidate]:
    from sld.search.engine import EngineConfig

    problem, folds, config = (_WORKER_CONTEXT[name] for name in ("problem", "folds", "config"))
    if not (isinstance(problem, Problem) and isinstance(config, EngineConfig) and isinstance(folds, list)):
        raise RuntimeError("candidate pool worker used before its initializer ran")
    return index, evaluate_one(problem, folds, config, proposal, law)


class LocalPool:
    """The local candidate pool: in this process with ``workers=1``, else a pool of worker processes.

    The process pool is fed one proposal per idle worker (nothing waits in its queue), and when the deadline
    passes with workers still busy the pool is terminated (and started again if more work comes), so a slow
    candidate cannot carry a search past its budget.
    """

    def __init__(self, problem: Problem, folds: Sequence[Fold], config: EngineConfig) -> None:
        self.problem, self.folds, self.config = problem, list(folds), config
        self._processes: Pool | None = None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes, if any (idle workers exit at once)."""
        if self._processes is not None:
            self._processes.terminate()
            self._processes.join()
            self._processes = None

    def _workers(self) -> Pool:
        if self._processes is None:
            load_evaluation_code()
            self._processes = Pool(
                self.config.workers, initializer=_init_worker, initargs=(self.problem, self.folds, self.config)
            )
        return self._processes

    def evaluate(
        self, proposals: Sequence[Proposal], deadline: float, report: Callable[[Candidate], None] | None = None
    ) -> list[Candidate]:
        """Evaluate proposals in order until the deadline; finished ones come back in proposal order.

        With one worker, the proposal being fitted when the deadline passes still finishes. ``report`` as in
        :meth:`CandidatePool.evaluate`.
        """
        if self.config.workers <= 1:
            results = []
            for proposal in proposals:
                if time.monotonic() > deadline:
                    break
                results.append(evaluate_one(self.problem, self.folds, self.config, proposal))
                if report is not None:
                    report(results[-1])
            return results
        done: queue.SimpleQueue[tuple[int, Candidate] | BaseException] = queue.SimpleQueue()

        def submit(index: int, proposal: Proposal) -> None:
            law = parsed_law(proposal, self.problem.variables)
            self._workers().apply_async(
                _evaluate_in_worker, (index, proposal, law), callback=done.put, error_callback=done.put
            )

        def next_done(timeout: float) -> tuple[int, Candidate] | None:
            try:
                result = done.get(timeout=timeout)
            except queue.Empty:
                return None
            if isinstance(result, BaseException):
                self.close()
                raise result
            return result

        finished, running = feed(proposals, deadline, self.config.workers, submit, next_done, report)
        if running:
            self.close()  # the busy workers are stopped; a new pool starts if more work comes
        return finished


def make_pool(problem: Problem, folds: Sequence[Fold], config: EngineConfig) -> CandidatePool:
    """Return the candidate pool named by ``config.executor``: :class:`LocalPool`, or a Ray cluster's pool."""
    if config.executor == "local":
        return LocalPool(problem, folds, config)
    if config.executor == "ray":
        from sld.search.ray_pool import RayPool

        return RayPool(problem, list(folds), config)
    raise ValueError(f"Unknown executor {config.executor!r}. Known: local, ray.")
