"""The discovery engine: propose law forms, fit and validate them, keep a diverse archive, choose by extrapolation.

Rounds: (0) the literature families over the profiled variables; (1) symbolic regression (pyoperon, or PySR);
(2+) evolution of the archive's elites. Each round's proposals are canonicalised and de-duplicated (the same law
found twice is fitted once), evaluated (in a process pool with ``workers > 1``) and archived; the run stops at the
time budget or when a round brings nothing new. The chosen law is the one with the lowest validation objective;
it is refitted on all training rows.

Example
-------
>>> import numpy as np
>>> from sld.search.engine import EngineConfig, run_search
>>> from sld.search.candidates import Problem
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> outcome = run_search(problem, EngineConfig(budget_s=20, backend="none", evolution_rounds=0))
>>> outcome.best.validation_r2 > 0.99
True
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sld.search.candidates import Candidate, Problem, evaluate_proposal, law_from_proposal, proposal_key
from sld.search.errors import ExpressionError, SearchError
from sld.search.expressions import Law, parse_law
from sld.search.families import Proposal, family_proposals
from sld.search.fitting import FitConfig, GroupedFit
from sld.search.profile import DataProfile, profile_data
from sld.search.selection import Fold, check_extrapolation, extrapolation_folds
from sld.search.shared_fits import shared_identity
from sld.search.warm_fits import fit_groups_warm, group_params

if TYPE_CHECKING:
    from sld.search.ray_pool import RayEvaluator


class EngineConfig(BaseModel):
    """Settings of one search.

    Attributes
    ----------
    budget_s : float
        Hard wall-clock budget for the search of one target.
    workers : int
        Processes evaluating candidates in parallel (1: in this process).
    seed : int
        Seed of every random choice (fits, folds, evolution, symbolic regression).
    n_starts : int
        Multi-start count of each constant fit.
    backend : {"operon", "pysr", "none"}
        Symbolic-regression backend.
    evolution_rounds : int
        Rounds of mutation and crossover after the families and the backend.
    parents_per_round, children_per_parent : int
        Size of each evolution round.
    complexity_penalty : float
        Validation NMSE is inflated by this share per constant when ranking.
    backend_time_s : float
        Time given to symbolic regression per target.
    near_tie : float
        Candidates within this relative margin of the best objective (or within one standard error of its fold
        errors) are near-ties; among them the final choice prefers literature families, then the objective (see
        ``SearchState.preferred``).
    max_candidates : int, optional
        Stop after this many evaluated candidates per target. Unlike the wall-clock budget, this limit gives the
        same result on a fast or a busy machine (the quick CI benchmark relies on it).
    executor : {"local", "ray"}
        Where candidates are fitted: this machine (``workers`` processes) or a Ray cluster (one task per CPU of
        the cluster, see ``search.ray_pool``). The answers are the same.
    ray_address : str, optional
        With ``executor="ray"``: the cluster to join (``auto``, ``HOST:PORT``, ``local``); ``None`` means ``auto``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget_s: float = Field(default=600.0, gt=0)
    workers: int = Field(default=1, ge=1)
    seed: int = 0
    n_starts: int = Field(default=6, ge=1)
    backend: Literal["operon", "pysr", "none"] = "operon"
    evolution_rounds: int = Field(default=4, ge=0)
    parents_per_round: int = Field(default=6, ge=1)
    children_per_parent: int = Field(default=6, ge=1)
    complexity_penalty: float = Field(default=0.01, ge=0)
    backend_time_s: float = Field(default=30.0, gt=0)
    max_candidates: int | None = Field(default=None, ge=1)
    near_tie: float = Field(default=0.1, ge=0)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None

    def fit_config(self) -> FitConfig:
        """Return the constant-fit settings this search uses."""
        return FitConfig(n_starts=self.n_starts, seed=self.seed)


@dataclass
class SearchState:
    """Everything a search has done so far; enough to resume it.

    Attributes
    ----------
    candidates : list of Candidate
        Every evaluated proposal, in evaluation order.
    proposals : Counter
        Proposals per source (``family``, ``operon``, ``evolution``, ``llm``...).
    round : int
        Next round to run.
    """

    candidates: list[Candidate] = field(default_factory=list)
    proposals: Counter[str] = field(default_factory=Counter)
    round: int = 0

    def seen_texts(self) -> set[str]:
        """Return the expressions already evaluated (with their shared constants, see `Candidate.identity`)."""
        return {candidate.identity for candidate in self.candidates}

    def seen_keys(self) -> set[str]:
        """Return the canonical keys already evaluated."""
        return {candidate.key for candidate in self.candidates if candidate.key}

    def preferred(self, tolerance: float) -> list[Candidate]:
        """Return the validated candidates in the order the final choice tries them.

        Near-ties are candidates the validation folds cannot separate from the best: within ``tolerance``
        (relative) of its objective, or within one standard error of its fold errors (Breiman's one-standard-error
        rule: with few folds, an edge smaller than the folds' own spread is noise, and the more candidates a
        search tries, the more such lucky edges it finds). Among near-ties a literature family wins over a
        generated form, then the objective decides: a published form carries knowledge of how laws behave beyond
        the data that a few folds cannot check.
        """
        ranked = self.ranked()
        if not ranked:
            return ranked
        best = ranked[0]
        threshold = best.objective * (1.0 + tolerance)
        error_threshold = best.validation_nmse + fold_standard_error(best)

        def tied(c: Candidate) -> bool:
            return c.objective <= threshold or c.validation_nmse <= error_threshold

        near = sorted(filter(tied, ranked), key=lambda c: (c.source != "family", c.objective, c.n_params, c.expression))
        return near + [c for c in ranked if not tied(c)]

    def ranked(self) -> list[Candidate]:
        """Return the validated candidates, best first (objective, then fewer constants, then text)."""
        ok = [c for c in self.candidates if c.status == "ok"]
        return sorted(ok, key=lambda c: (c.objective, c.n_params, c.expression))


def fold_standard_error(candidate: Candidate) -> float:
    """Return the standard error of a candidate's mean validation error over its folds (0 with one fold)."""
    errors = np.array([1.0 - r2 for r2 in candidate.fold_r2])
    if errors.size < 2:
        return 0.0
    return float(errors.std(ddof=1) / np.sqrt(errors.size))


@dataclass
class SearchOutcome:
    """The chosen law for one target and the search that found it."""

    problem: Problem
    best: Candidate
    law: Law
    fit: GroupedFit
    state: SearchState
    seconds: float


# Worker processes receive the problem once (pool initializer) instead of with every task.
_WORKER_CONTEXT: dict[str, object] = {}


def _init_worker(problem: Problem, folds: list[Fold], config: EngineConfig) -> None:
    from threadpoolctl import threadpool_limits

    # Each worker solves tiny systems; one BLAS thread per process avoids oversubscribing the cores.
    threadpool_limits(limits=1, user_api="blas")
    _WORKER_CONTEXT.update(problem=problem, folds=folds, config=config)


def _evaluate(problem: Problem, folds: list[Fold], config: EngineConfig, proposal: Proposal) -> Candidate:
    candidate, _ = evaluate_proposal(
        problem, proposal, folds, config=config.fit_config(), complexity_penalty=config.complexity_penalty
    )
    return candidate


def _evaluate_in_worker(proposal: Proposal) -> Candidate:
    problem = _WORKER_CONTEXT["problem"]
    folds = _WORKER_CONTEXT["folds"]
    config = _WORKER_CONTEXT["config"]
    assert isinstance(problem, Problem) and isinstance(config, EngineConfig) and isinstance(folds, list)
    return _evaluate(problem, folds, config, proposal)


class Evaluator:
    """Evaluates batches of proposals for one problem, in-process or in a process pool, within a deadline.

    The pool is fed one proposal per idle worker (nothing waits in its queue), and workers still busy at the
    deadline are stopped, so a slow candidate cannot carry a search past its budget.
    """

    def __init__(self, problem: Problem, folds: list[Fold], config: EngineConfig) -> None:
        self.problem, self.folds, self.config = problem, folds, config
        self._pool: ProcessPoolExecutor | None = None
        # Candidates evaluated at once (callers size their batches by it).
        self.capacity = config.workers

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.config.workers,
                initializer=_init_worker,
                initargs=(self.problem, self.folds, self.config),
            )
        return self._pool

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _stop_workers(self) -> None:
        if self._pool is None:
            return
        # The executor offers no way to interrupt a running task; its worker processes are ended instead and a
        # fresh pool starts if more work comes.
        for process in list(getattr(self._pool, "_processes", {}).values()):
            process.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def evaluate(self, proposals: Sequence[Proposal], deadline: float) -> list[Candidate]:
        """Evaluate proposals in order until the deadline; finished ones come back in proposal order."""
        if self.config.workers <= 1:
            results = []
            for proposal in proposals:
                if time.monotonic() > deadline:
                    break
                results.append(_evaluate(self.problem, self.folds, self.config, proposal))
            return results
        waiting = list(enumerate(proposals))[::-1]
        running: dict[Future[Candidate], int] = {}
        finished: dict[int, Candidate] = {}
        while waiting or running:
            while waiting and len(running) < self.config.workers and time.monotonic() < deadline:
                index, proposal = waiting.pop()
                running[self._workers().submit(_evaluate_in_worker, proposal)] = index
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not running:
                break
            done, _ = wait(running, timeout=remaining, return_when=FIRST_COMPLETED)
            for future in done:
                finished[running.pop(future)] = future.result()
        if running:
            self._stop_workers()
        return [finished[index] for index in sorted(finished)]


def make_evaluator(problem: Problem, folds: list[Fold], config: EngineConfig) -> Evaluator | RayEvaluator:
    """Return the candidate evaluator ``config.executor`` names (a context manager; ``evaluate``, ``capacity``)."""
    if config.executor == "ray":
        from sld.search.ray_pool import RayEvaluator

        return RayEvaluator(problem, folds, config)
    return Evaluator(problem, folds, config)


def make_folds(problem: Problem, seed: int) -> list[Fold]:
    """Return the validation folds of a problem's training rows."""
    return extrapolation_folds(problem.order, problem.groups, seed=seed)


def deduplicate(proposals: Iterable[Proposal], state: SearchState, variables: tuple[str, ...]) -> list[Proposal]:
    """Drop proposals already evaluated or repeated, by text and by canonical form; keep unparseable ones.

    Unparseable proposals are kept so that their rejection reasons are recorded (and fed back to proposers).
    """
    texts, keys = state.seen_texts(), state.seen_keys()
    unique: list[Proposal] = []
    for proposal in proposals:
        identity = shared_identity(proposal.expression, proposal.shared)
        if identity in texts:
            continue
        texts.add(identity)
        try:
            key, _ = proposal_key(proposal, law_from_proposal(proposal, variables))
        except ExpressionError:
            unique.append(proposal)
            continue
        if key not in keys:
            keys.add(key)
            unique.append(proposal)
    return unique


def backend_proposals(problem: Problem, config: EngineConfig) -> list[Proposal]:
    """Ask the symbolic-regression backend for structures (on the largest group's rows)."""
    if config.backend == "none":
        return []
    from sld.search.backends import get_backend

    backend = get_backend(config.backend)
    if backend is None:
        return []
    names, counts = np.unique(problem.groups, return_counts=True)
    rows = problem.groups == names[int(np.argmax(counts))]
    laws = backend.propose_laws(
        problem.X[rows],
        problem.y[rows],
        problem.variables,
        max_params=problem.max_params,
        seed=config.seed,
        time_limit_s=config.backend_time_s,
    )
    # The backend's constant values start the refit (unbounded: the per-group fits may move far from them).
    return [
        Proposal(
            law.expression,
            source=config.backend,
            family="symbolic regression",
            bounds={name: (-math.inf, math.inf, value) for name, value in law.init.items() if math.isfinite(value)},
        )
        for law in laws
    ]


def evolution_proposals(
    problem: Problem, state: SearchState, config: EngineConfig, rng: np.random.Generator
) -> list[Proposal]:
    """Mutate and cross the archive's elites (MAP-Elites over the number of constants)."""
    from sld.search.archive import Archive, ArchiveEntry
    from sld.search.evolution import crossover, mutate

    archive = Archive()
    for candidate in state.ranked():
        archive.add(
            ArchiveEntry(
                expression=candidate.expression,
                n_params=candidate.n_params,
                score=-candidate.objective,
                source=candidate.source,
                key=candidate.key,
            )
        )
    parents = archive.sample_parents(rng, config.parents_per_round)
    by_key = {candidate.key: candidate for candidate in state.ranked()}
    children: list[Proposal] = []
    parent_laws = []
    for parent in parents:
        try:
            law = parse_law(parent.expression, problem.variables)
        except ExpressionError:
            continue
        parent_laws.append(law)
        for child in mutate(
            law, variables=problem.variables, max_params=problem.max_params, rng=rng, n=config.children_per_parent
        ):
            children.append(Proposal(child.expression, source="evolution", family=child.operator))
        if parent.key in by_key:
            children.extend(sharing_proposals(by_key[parent.key], law, problem, rng))
    for first, second in zip(parent_laws[::2], parent_laws[1::2], strict=False):
        for child in crossover(first, second, max_params=problem.max_params, rng=rng):
            children.append(Proposal(child.expression, source="evolution", family=child.operator))
    return children


def _sharing_family(family: str) -> str:
    suffix = ", shared constants"
    return family if family.endswith(suffix) else family + suffix


# Sharing moves tried per parent and round: one constant more shared across groups, or one fewer.
SHARING_CHILDREN = 2


def sharing_proposals(parent: Candidate, law: Law, problem: Problem, rng: np.random.Generator) -> list[Proposal]:
    """Propose the parent's form with one constant more (or fewer) shared across groups.

    A literature family keeps its source (the form is the same law with a constant made global); other forms
    are tagged ``sharing``. Problems with one group have nothing to share.
    """
    from sld.search.evolution import sharing_variants

    if len(np.unique(problem.groups)) < 2:
        return []
    variants = sharing_variants(law, shared=frozenset(parent.shared))
    picked = rng.permutation(len(variants))[:SHARING_CHILDREN]
    literature = parent.source == "family"
    return [
        Proposal(
            parent.expression,
            source="family" if literature else "sharing",
            family=_sharing_family(parent.family) if literature else "sharing",
            bounds=parent.bounds,
            rationale="one value for all groups pools their evidence",
            shared=tuple(sorted(variants[int(index)])),
        )
        for index in sorted(picked)
    ]


Proposer = Callable[[Problem, SearchState], list[Proposal]]


def offline_round(problem: Problem, state: SearchState, config: EngineConfig, profile: DataProfile) -> list[Proposal]:
    """Return the offline proposals of the state's current round (families, backend, then evolution)."""
    if state.round == 0:
        return family_proposals(profile, max_params=problem.max_params)
    if state.round == 1:
        return backend_proposals(problem, config)
    rng = np.random.default_rng([config.seed, state.round])
    return evolution_proposals(problem, state, config, rng)


def finalize(problem: Problem, state: SearchState, config: EngineConfig) -> tuple[Candidate, Law, GroupedFit]:
    """Fit the best validated candidate on all training rows, keeping only a fit that passed the checks.

    The candidate's own evaluation is repeated (it is deterministic) to recover the fit that passed the
    extrapolation checks; a refit with twice the starts replaces it only if it fits the training rows better
    *and* passes the same checks, since another optimum of the same form can behave differently beyond the data.

    Raises
    ------
    SearchError
        When no candidate was validated.
    """
    ranked = state.ranked()
    if not ranked:
        reasons = Counter(c.reason.split(":")[0] for c in state.candidates)
        raise SearchError(
            f"No law for target '{problem.target}' passed validation ({len(state.candidates)} tried; "
            f"reasons: {dict(reasons.most_common(3))}). Raise --budget-s or --max-params."
        )
    fit_config = config.fit_config()
    folds = make_folds(problem, config.seed)
    for best in state.preferred(config.near_tie):
        proposal = Proposal(best.expression, source=best.source, bounds=best.bounds, shared=best.shared)
        checked, fit = evaluate_proposal(
            problem, proposal, folds, config=fit_config, complexity_penalty=config.complexity_penalty
        )
        if checked.status == "ok" and fit is not None:
            break
    else:  # no candidate reproduced (cannot happen with a deterministic fitter): fail clearly
        raise SearchError(f"No validated law for target '{problem.target}' could be refitted.")
    law = law_from_proposal(proposal, problem.variables)
    warm = group_params(fit)
    refit = fit_groups_warm(
        law,
        problem.X,
        problem.y,
        problem.groups,
        config=FitConfig(n_starts=2 * config.n_starts, seed=config.seed + 1),
        initial=warm,
        shared=frozenset(best.shared),
    )
    if (
        _train_mse(law, refit, problem) < _train_mse(law, fit, problem)
        and check_extrapolation(law, refit, problem.X, problem.y, problem.groups, problem.region) is None
    ):
        fit = refit
    return best, law, fit


def _train_mse(law: Law, fit: GroupedFit, problem: Problem) -> float:
    with np.errstate(all="ignore"):
        residual = fit.predict(law, problem.X, problem.groups) - problem.y
    value = float(np.mean(residual**2))
    return value if np.isfinite(value) else float("inf")


def run_search(
    problem: Problem,
    config: EngineConfig,
    *,
    extra_proposers: Sequence[Proposer] = (),
    on_candidate: Callable[[Candidate], None] | None = None,
    state: SearchState | None = None,
) -> SearchOutcome:
    """Search law forms for one target and return the one that extrapolates best inside the training rows.

    Parameters
    ----------
    problem : Problem
        Training rows of one target.
    config : EngineConfig
        Budget, workers, seed, backend.
    extra_proposers : sequence of callables
        More proposers (e.g. an LLM), asked every round after the offline proposals.
    on_candidate : callable, optional
        Called with each evaluated candidate (run logs, checkpoints, progress).
    state : SearchState, optional
        A state to resume from; its candidates are not evaluated again.

    Returns
    -------
    SearchOutcome
    """
    started = time.monotonic()
    # Keep a tenth of the budget for the final refit, so the whole search ends within it.
    deadline = started + 0.9 * config.budget_s
    state = state or SearchState()
    profile = profile_data(problem.X, problem.y, problem.variables, problem.groups)
    folds = make_folds(problem, config.seed)
    last_round = 1 + config.evolution_rounds
    with make_evaluator(problem, folds, config) as evaluator:
        while state.round <= last_round and time.monotonic() < deadline:
            proposals = offline_round(problem, state, config, profile)
            for proposer in extra_proposers:
                proposals.extend(proposer(problem, state))
            fresh = deduplicate(proposals, state, problem.variables)
            if config.max_candidates is not None:
                fresh = fresh[: max(0, config.max_candidates - len(state.candidates))]
                if not fresh:
                    break
            for candidate in evaluator.evaluate(fresh, deadline):
                state.candidates.append(candidate)
                state.proposals[candidate.source] += 1
                if on_candidate is not None:
                    on_candidate(candidate)
            state.round += 1
    best, law, fit = finalize(problem, state, config)
    return SearchOutcome(
        problem=problem, best=best, law=law, fit=fit, state=state, seconds=round(time.monotonic() - started, 3)
    )
