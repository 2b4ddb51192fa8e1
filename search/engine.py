"""The discovery engine's steps: search settings, the state of one target's search, and the final choice.

The loop that runs these steps is the discovery graph (:mod:`sld.agent.graph`); its stop rules are
:class:`~sld.search.stopping.StopPolicy`. The steps: proposals of a round (:mod:`sld.search.proposals`),
de-duplication (:func:`~sld.search.proposals.deduplicate`), evaluation of a batch in a candidate pool
(:mod:`sld.search.pool`), and :func:`finalize`: the chosen law (the choice rule is
:func:`sld.search.selection.preferred`) refitted on all training rows.

Example
-------
>>> import time
>>> import numpy as np
>>> from sld.search.candidates import Problem
>>> from sld.search.pool import make_pool
>>> from sld.search.proposals import Proposal
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> config, state = EngineConfig(backend="none", n_starts=2), SearchState()
>>> with make_pool(problem, make_folds(problem, config.seed), config) as pool:
...     state.add(pool.evaluate([Proposal("E + A * (N / 1e8)**(-alpha)")], time.monotonic() + 60))
>>> best, law, fit = finalize(problem, state, config)
>>> best.validation_r2 > 0.99
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from sld.search.candidates import Candidate, Problem, evaluate_proposal, law_from_proposal
from sld.search.consensus import MAX_NEAR_TIES, UncertaintyBand, consensus_choice, distance_to, probe_predictions
from sld.search.errors import SearchError
from sld.search.expressions import Law
from sld.search.fallback import fallback_choice
from sld.search.fitting import FitConfig, GroupedFit
from sld.search.selection import (
    Fold,
    ProbeRegion,
    check_extrapolation,
    extrapolation_folds,
    preferred,
    ranked,
    ranks,
    single_fold_warning,
)
from sld.search.warm_fits import fit_groups_warm, group_params

FloatArray = NDArray[np.float64]

# Seeds of a target's later searches are this far apart, so they never meet the seeds of another run's first one.
RESTART_SEED_STEP = 1_000_003


class EngineConfig(BaseModel):
    """Settings of the engine's steps (how candidates are proposed, fitted and chosen).

    When a search stops is not set here but by :class:`~sld.search.stopping.StopPolicy`.

    Attributes
    ----------
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
        :func:`sld.search.selection.preferred`).
    executor : {"local", "ray"}
        Where candidates are fitted: this machine (``workers`` processes) or a Ray cluster (one task per CPU of
        the cluster, see ``search.ray_pool``). The answers are the same (``search.pool.make_pool`` picks it).
    ray_address : str, optional
        With ``executor="ray"``: the cluster to join (``auto``, ``HOST:PORT``, ``local``); ``None`` means ``auto``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(default=1, ge=1)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    seed: int = 0
    n_starts: int = Field(default=6, ge=1)
    backend: Literal["operon", "pysr", "none"] = "operon"
    evolution_rounds: int = Field(default=4, ge=0)
    parents_per_round: int = Field(default=6, ge=1)
    children_per_parent: int = Field(default=6, ge=1)
    complexity_penalty: float = Field(default=0.01, ge=0)
    backend_time_s: float = Field(default=30.0, gt=0)
    near_tie: float = Field(default=0.1, ge=0)

    def restarted(self, restart: int) -> EngineConfig:
        """Return the settings of a target's search number ``restart``: the same, with its own seed."""
        return self if restart == 0 else self.model_copy(update={"seed": self.seed + RESTART_SEED_STEP * restart})

    def fit_config(self) -> FitConfig:
        """Return the constant-fit settings this search uses."""
        return FitConfig(n_starts=self.n_starts, seed=self.seed)


@dataclass
class SearchState:
    """Everything the search of one target has done so far.

    Attributes
    ----------
    candidates : list of Candidate
        Every evaluated proposal, in evaluation order.
    proposals : Counter
        Evaluated proposals per source (``family``, ``operon``, ``evolution``, ``llm``...).
    round : int
        The offline schedule's next round (:func:`sld.search.proposals.round_proposals`).
    warning : str
        Set by ``finalize`` when no candidate validated and the law is a fallback, or when the choice rests on one
        validation fold (empty otherwise).
    band : UncertaintyBand or None
        Set by ``finalize``: the near-ties' predictions beyond the data.
    restart : int
        Which of the target's independent searches is running (:attr:`~sld.search.stopping.StopPolicy.restarts`).
    restart_start : int
        Index in ``candidates`` of the first candidate of that search.
    """

    candidates: list[Candidate] = field(default_factory=list)
    proposals: Counter[str] = field(default_factory=Counter)
    round: int = 0
    restart: int = 0
    restart_start: int = 0
    # Set by ``finalize``: why the choice deserves care (nothing validated), and the near-ties' spread beyond the data.
    warning: str = ""
    band: UncertaintyBand | None = None

    def add(self, candidates: Iterable[Candidate]) -> None:
        """Record evaluated candidates (and count them per source)."""
        for candidate in candidates:
            self.candidates.append(candidate)
            self.proposals[candidate.source] += 1

    def seen_texts(self) -> set[str]:
        """Return the expressions already evaluated (with their shared constants, see `Candidate.identity`)."""
        return {candidate.identity for candidate in self.candidates}

    def seen_keys(self) -> set[str]:
        """Return the canonical keys already evaluated."""
        return {candidate.key for candidate in self.candidates if candidate.key}

    def preferred(
        self, tolerance: float, *, variables: tuple[str, ...] = (), region: ProbeRegion | None = None
    ) -> tuple[list[Candidate], int]:
        """Return the candidates in the order the final choice tries them, and the near-ties' count.

        See :func:`~.selection.preferred`.
        """
        return preferred(self.candidates, tolerance, variables=variables, region=region)

    def ranked(self) -> list[Candidate]:
        """Return the validated candidates, best first (:func:`~sld.search.selection.ranked`)."""
        return ranked(self.candidates)

    def lineage(self) -> list[Candidate]:
        """Return the validated candidates the current search evolves from, best first.

        The literature families (evaluated once, by the first search) and the current search's own candidates:
        each search follows its own parents, which is what makes the searches independent.
        """
        own = self.candidates[self.restart_start:]
        return ranked([c for c in self.candidates[: self.restart_start] if c.source == "family"] + own)


@dataclass
class SearchOutcome:
    """The chosen law for one target and the search that found it."""

    problem: Problem
    best: Candidate
    law: Law
    fit: GroupedFit
    state: SearchState
    seconds: float


def make_folds(problem: Problem, seed: int) -> list[Fold]:
    """Return the validation folds of a problem's training rows: those that can rank laws on its target.

    A fold holding out one or two rows (the largest axis value of a single curve), or a flat tail, validates
    nothing (`sld.search.selection.ranks`), so it is neither fitted nor counted (an rnsl NMT curve of 10 rows has
    two such folds of four).
    """
    return [fold for fold in extrapolation_folds(problem.order, problem.groups, seed=seed) if ranks(fold, problem.y)]


def finalize(problem: Problem, state: SearchState, config: EngineConfig) -> tuple[Candidate, Law, GroupedFit]:
    """Choose the law among the validated candidates and fit it on all training rows.

    Each near-tie's fit on all training rows, the one that passed the extrapolation checks, comes from its record
    (`Candidate.recorded_fit`; a record without one is evaluated again, which is deterministic). Among them
    :func:`sld.search.consensus.consensus_choice` picks the law closest to the consensus beyond the data of the
    near-ties and the next validated laws (``MAX_NEAR_TIES`` voters in all), and the near-ties' spread is kept in
    ``state.band``. A refit with twice the starts replaces the chosen fit only if
    it fits the training rows better *and* passes the same checks, and, when it fits better by less than the
    near-tie tolerance, only if it is closer to that consensus beyond the data, since another optimum of the same
    form can behave differently there. When no candidate validated, the best plausible fit of all training rows is
    returned and ``state.warning`` says why validation was weak; a choice made on one validation fold gets a
    warning too (`single_fold_warning`).

    Raises
    ------
    SearchError
        When no candidate could be fitted at all.
    """
    fit_config = config.fit_config()
    folds = make_folds(problem, config.seed)
    state.warning, state.band = "", None
    if not state.ranked():
        fallback = fallback_choice(
            problem, state.candidates, folds, config=fit_config, penalty=config.complexity_penalty
        )
        if fallback is None:
            reasons = Counter(c.reason.split(":")[0] for c in state.candidates)
            raise SearchError(
                f"No law for target '{problem.target}' could be fitted ({len(state.candidates)} tried; "
                f"reasons: {dict(reasons.most_common(3))}). Raise --budget-s or --max-params."
            )
        state.warning = fallback.warning
        return fallback.candidate, fallback.law, fallback.fit
    entries: list[tuple[Candidate, Law, GroupedFit]] = []
    panel: list[tuple[Candidate, Law, GroupedFit]] = []
    ordered, n_tied = state.preferred(config.near_tie, variables=problem.variables, region=problem.region)
    # Up to MAX_NEAR_TIES near-ties are compared, and the next validated laws join their consensus up to that
    # many voters; only when no near-tie reproduces does the next candidate get its turn to be chosen.
    for index, candidate in enumerate(ordered):
        if len(entries) + len(panel) >= MAX_NEAR_TIES:
            break
        proposal = candidate.proposal()
        law = law_from_proposal(proposal, problem.variables)
        fit = candidate.recorded_fit(law, problem.X, problem.y, problem.groups)
        if fit is None:  # a record without its fit (written before fits were kept): evaluate it again
            checked, fit = evaluate_proposal(
                problem, proposal, folds, config=fit_config, complexity_penalty=config.complexity_penalty, law=law
            )
            fit = fit if checked.status == "ok" else None
        if fit is not None:
            (entries if index < n_tied or not entries else panel).append((candidate, law, fit))
    if not entries:  # no candidate reproduced (cannot happen with a deterministic fitter): fail clearly
        raise SearchError(f"No validated law for target '{problem.target}' could be refitted.")
    chosen, state.band, consensus = consensus_choice(
        entries, problem.X, problem.y, problem.groups, problem.region, panel=panel
    )
    best, law, fit = entries[chosen]
    state.warning = single_fold_warning(problem.target, folds, len(problem.y), config.near_tie)
    refit = fit_groups_warm(
        law,
        problem.X,
        problem.y,
        problem.groups,
        config=FitConfig(n_starts=2 * config.n_starts, seed=config.seed + 1),
        initial=group_params(fit),
        shared=frozenset(best.shared),
    )
    if _refit_wins(law, fit, refit, problem, consensus, tolerance=config.near_tie):
        fit = refit
    return best, law, fit


def _refit_wins(
    law: Law, fit: GroupedFit, refit: GroupedFit, problem: Problem, consensus: FloatArray, *, tolerance: float
) -> bool:
    # The refit is another optimum of the same form, so it is weighed as near-ties are: it must fit the training
    # rows better and pass the same checks; when it fits better by less than the near-tie tolerance, the rows
    # cannot tell the two optima apart, and the one closer to the consensus beyond the data wins. A
    # 10-constant law can gain 1% of training error from an optimum that bends away beyond the data (lr_bsz at
    # seed 0 did, and its test R^2 fell from 0.37 to -0.02), and which optimum twice the starts find is chance.
    refit_mse, fit_mse = _train_mse(law, refit, problem), _train_mse(law, fit, problem)
    if not refit_mse < fit_mse:
        return False
    if check_extrapolation(law, refit, problem.X, problem.y, problem.groups, problem.region) is not None:
        return False
    if refit_mse < fit_mse * (1.0 - tolerance):
        return True
    predictions = np.stack([probe_predictions(law, f, problem.X, problem.groups, problem.region) for f in (fit, refit)])
    distance = distance_to(predictions, consensus, span=float(np.ptp(problem.y)))
    return bool(distance[1] < distance[0])


def _train_mse(law: Law, fit: GroupedFit, problem: Problem) -> float:
    with np.errstate(all="ignore"):
        residual = fit.predict(law, problem.X, problem.groups) - problem.y
    value = float(np.mean(residual**2))
    return value if np.isfinite(value) else float("inf")
