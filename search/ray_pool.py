"""The Ray candidate pool: the local pool's contract (``search/pool.py``), with candidates fitted as Ray tasks.

``EngineConfig(executor="ray")`` selects it (see ``search.pool.make_pool``). The problem's arrays and folds
go to the object store once per pool (``ray.put``); each task receives only its proposal. One candidate per
CPU of the cluster is in flight, so the same command uses 2 cores here and 100 on a large cluster:

    sld discover --executor ray --ray-address auto --max-candidates 40

Answers do not depend on the executor: a candidate's evaluation is deterministic given its proposal and the
finished ones come back in proposal order. At the deadline outstanding tasks are cancelled (their workers killed,
like the local pool's); a task whose worker dies is retried once by Ray, then recorded as a failed candidate with
the reason, so no submitted candidate is lost. ``ray`` is imported only when a pool starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sld.search.candidates import Candidate, Problem, parsed_law, proposal_key
from sld.search.errors import ClusterUnavailable
from sld.search.pool import evaluate_one, feed
from sld.search.proposals import Proposal
from sld.search.selection import Fold

if TYPE_CHECKING:
    from sld.search.engine import EngineConfig
    from sld.search.expressions import Law

# Ray re-runs a task whose worker process died this many times before reporting it failed.
TASK_RETRIES = 1


def connect(address: str | None) -> ModuleType:
    """Connect this process to a Ray cluster once and return the ``ray`` module.

    Parameters
    ----------
    address : str or None
        ``auto`` (the cluster this machine belongs to, found through ``RAY_ADDRESS`` or ``ray start``), ``HOST:PORT``
        of a head node, ``ray://HOST:10001`` (Ray client) or ``local`` (start a cluster in this process). ``None``
        means ``auto``. Inside a Ray task the existing connection is used.

    Raises
    ------
    ClusterUnavailable
        When Ray is not installed or no cluster answers at ``address``.
    """
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailable("--executor ray needs Ray: pip install 'sld[ray]' (or use --executor local)") from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address or "auto", ignore_reinit_error=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ClusterUnavailable(
                f"No Ray cluster at --ray-address {address or 'auto'!r} ({exc}). Start one with `ray start --head`, "
                "pass its HOST:PORT, or use --ray-address local for a cluster in this process."
            ) from exc
    return ray


def cluster_cpus(ray: ModuleType) -> int:
    """Return the CPUs of the connected cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _evaluate_task(
    context: tuple[Problem, list[Fold], EngineConfig], proposal: Proposal, law: Law | None
) -> Candidate:
    """Evaluate one proposal inside a Ray worker (``context`` arrives from the object store).

    ``law`` is the proposal as the driver parsed it, or ``None`` if it does not parse (`evaluate_one`).
    """
    problem, folds, config = context
    return evaluate_one(problem, folds, config, proposal, law)


@functools.cache
def _remote_evaluate() -> Any:
    import ray

    return ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_evaluate_task)


def failed_candidate(problem: Problem, proposal: Proposal, reason: str) -> Candidate:
    """Return the record of a proposal whose evaluation was lost (its worker died), with the reason."""
    law = parsed_law(proposal, problem.variables)
    key = "" if law is None else proposal_key(proposal, law)[0]
    return Candidate(
        proposal.expression,
        source=proposal.source,
        family=proposal.family,
        key=key,
        status="failed",
        reason=reason,
        rationale=proposal.rationale,
        bounds=dict(proposal.bounds),
        shared=tuple(proposal.shared),
    )


class RayPool:
    """Evaluates batches of proposals for one problem as Ray tasks, within a deadline.

    Parameters
    ----------
    problem : Problem
        Training rows of one target; put in the object store once, on entering the context.
    folds : list of Fold
        Validation folds of the training rows.
    config : EngineConfig
        Fit settings and ``ray_address``.
    """

    def __init__(self, problem: Problem, folds: list[Fold], config: EngineConfig) -> None:
        self.problem, self.folds, self.config = problem, folds, config
        self._ray: ModuleType | None = None
        self._context: Any = None
        self.capacity = 1

    def __enter__(self) -> RayPool:
        self._ray = connect(self.config.ray_address)
        self._context = self._ray.put((self.problem, self.folds, self.config))
        self.capacity = cluster_cpus(self._ray)
        return self

    def __exit__(self, *exc: object) -> None:
        self._context = None  # the object store frees the arrays once nothing refers to them

    def evaluate(
        self, proposals: Sequence[Proposal], deadline: float, report: Callable[[Candidate], None] | None = None
    ) -> list[Candidate]:
        """Evaluate proposals in order until the deadline; finished ones come back in proposal order.

        ``report`` as in `sld.search.pool.CandidatePool.evaluate`.
        """
        if self._ray is None:
            self.__enter__()
        ray = self._ray
        assert ray is not None  # set by __enter__
        remote = _remote_evaluate()
        running: dict[Any, int] = {}

        def submit(index: int, proposal: Proposal) -> None:
            law = parsed_law(proposal, self.problem.variables)
            running[remote.remote(self._context, proposal, law)] = index

        def next_done(timeout: float) -> tuple[int, Candidate] | None:
            done, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
            if not done:
                return None
            index = running.pop(done[0])
            return index, self._result(done[0], proposals[index])

        # One task per CPU, as the local pool feeds one per idle worker (`sld.search.pool.feed`).
        finished, _ = feed(proposals, deadline, self.capacity, submit, next_done, report)
        for ref in running:
            ray.cancel(ref, force=True)
        return finished

    def _result(self, ref: Any, proposal: Proposal) -> Candidate:
        ray = self._ray
        assert ray is not None
        try:
            candidate: Candidate = ray.get(ref)
        except ray.exceptions.RayTaskError:
            raise  # an error inside the evaluation is a bug, raised as the local pool raises it
        except ray.exceptions.RayError as exc:
            # The worker died twice (or the node left): the candidate is recorded, not lost.
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return failed_candidate(self.problem, proposal, f"worker lost: {type(exc).__name__}: {first_line}"[:300])
        return candidate
