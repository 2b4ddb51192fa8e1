"""Symbolic-regression searches started ahead of the round that reads them, in a process of their own.

The offline schedule asks the structure-search backend (Operon) for forms in round 1, and the backend's search
does not depend on anything round 0 finds: it reads the training rows only. Run in its round, it kept the
candidate workers idle for its whole search (7.6 s of lr_bsz's 66, 1.6-1.8 s of the other tasks' 10-20 s).
:class:`BackendRuns` starts it in a separate process while round 0's families are evaluated and hands its
proposals to round 1. The result is the same as a search run in its round: the backend is seeded and bounded by
generations and evaluations (its wall-clock limit is far above what it needs), and what it proposes goes through
the same deduplication and evaluation. Each search after a target's first begins at round 1, so taking a
search's proposals starts the next one's, which runs while the current search is evaluated. A run resumed at
round 1 (the process that started the search is gone) searches in its round again.

Example
-------
>>> import numpy as np
>>> from sld.search.candidates import Problem
>>> from sld.search.engine import EngineConfig
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> with BackendRuns() as runs:
...     runs.start(problem, EngineConfig(backend="none"))
...     runs.take(problem, EngineConfig(backend="none"))
[]
"""

from __future__ import annotations

from multiprocessing.pool import AsyncResult, Pool
from typing import TYPE_CHECKING

from sld.search.candidates import Problem
from sld.search.proposals import Proposal, backend_proposals

if TYPE_CHECKING:
    from types import TracebackType

    from sld.search.engine import EngineConfig


class BackendRuns:
    """Backend searches running ahead, by target and seed; closing stops the ones nobody took."""

    def __init__(self) -> None:
        self._process: Pool | None = None
        self._running: dict[tuple[str, int], AsyncResult[list[Proposal]]] = {}

    def __enter__(self) -> BackendRuns:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def started(self) -> frozenset[tuple[str, int]]:
        """The (target, seed) pairs whose searches were started and not taken yet."""
        return frozenset(self._running)

    def start(self, problem: Problem, config: EngineConfig) -> None:
        """Start the backend's search for ``problem`` with ``config``'s seed (nothing for ``backend="none"``).

        Targets are searched in turn, so a search begun for another target is one that target's stop rule did
        not need (the search after its last one): it is dropped, and the process stopped if it is still on it,
        so that this target's search does not queue behind it.
        """
        key = (problem.target, config.seed)
        if config.backend == "none" or key in self._running:
            return
        unused = [self._running.pop(other) for other in list(self._running) if other[0] != problem.target]
        if any(not search.ready() for search in unused):
            self.close()
        if self._process is None:
            # One process serves every target and restart in turn: searches queue behind each other.
            self._process = Pool(1)
        self._running[key] = self._process.apply_async(backend_proposals, (problem, config))

    def take(self, problem: Problem, config: EngineConfig) -> list[Proposal]:
        """Return the proposals of the search :meth:`start` began, waiting for it; search now if none was begun."""
        running = self._running.pop((problem.target, config.seed), None)
        if running is None:
            return backend_proposals(problem, config)
        return running.get()

    def close(self) -> None:
        """Stop the process and the searches still in it (a search capped before round 1 never needs its result)."""
        self._running.clear()
        if self._process is not None:
            self._process.terminate()
            self._process.join()
            self._process = None
