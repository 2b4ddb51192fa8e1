"""Score methods on SLDBench tasks with the official rule and collect a JSON-ready result.

Example
-------
``sld bench --method human --json human.json`` runs :func:`run_bench` over the 8 tasks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from sld.search import (
    FitConfig,
    Law,
    Scores,
    SearchError,
    SplitArrays,
    clip_r2,
    parse_law,
    score_predictions,
    score_split,
)
from sld.search.plausibility import plausibility_record
from sld.tasks import Task, get_task, list_tasks
from sld.tasks.data import load_task_splits
from sld.tasks.literature import human_law

if TYPE_CHECKING:
    from sld.agent.discovery import Discovery
    from sld.agent.llm import LLMClient
    from sld.agent.progress import Progress
    from sld.agent.state import AgentConfig
    from sld.search.engine import SearchOutcome


class TaskScore(BaseModel):
    """One method's official test scores on one task (discovery runs add their search statistics)."""

    # A failed score is -inf or nan; "strings" writes them so that the JSON reads back.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    r2: float
    nmse: float
    nmae: float
    n_params: int
    law: str
    seconds: float
    published_constants_r2: float | None = None
    validation_r2: float | None = None
    candidates_evaluated: int | None = None
    proposals: dict[str, int] | None = None
    ranking: dict[str, object] | None = None
    # Per target, the constants of the chosen law that take one value for all groups (discovery runs).
    shared: dict[str, list[str]] | None = None
    # Per target, the chosen law's expression and its plausibility checks beyond the training rows
    # (`sld.search.plausibility.plausibility_record`), and the near-ties' spread there (discovery runs).
    plausibility: dict[str, dict[str, object]] | None = None
    uncertainty: dict[str, dict[str, object]] | None = None
    warnings: dict[str, str] | None = None
    # Discovery runs with an LLM: its account (model, calls, tokens, share of proposals).
    llm: dict[str, object] | None = None
    # Discovery runs: why each target's search stopped.
    stopped: dict[str, str] | None = None
    # The paper metric of the rnsl suite: RMSE of log loss on the extrapolation rows, and its "standard error".
    log_rmse: float | None = None
    log_rmse_se: float | None = None
    # False when the method gave no law (e.g. no candidate passed validation); the scores are then failures.
    law_returned: bool = True
    message: str | None = None
    # Other scorings of the same method (e.g. operon's pooled model beside its per-group refit).
    alternatives: dict[str, float] | None = None

    @classmethod
    def no_law(cls, message: str, *, seconds: float) -> TaskScore:
        """Return the score of a method that returned no law (R^2 -inf, errors inf)."""
        return cls(r2=-math.inf, nmse=math.inf, nmae=math.inf, n_params=0, law="", seconds=round(seconds, 3),
                   law_returned=False, message=message)


class BenchResult(BaseModel):
    """Scores of one method over several tasks; ``mean_r2`` clips each R^2 to [-1, 1] like the leaderboard."""

    method: str
    tasks: dict[str, TaskScore]
    mean_r2: float


def finite_r2(scores: Scores) -> float:
    """Return a score's R^2, with -inf for a failed or undefined one (how every bench records a failure)."""
    return scores.r2 if math.isfinite(scores.r2) else -math.inf


def score_laws(
    laws: Sequence[Law], train: SplitArrays, test: SplitArrays, *, fit_config: FitConfig
) -> tuple[Scores, int]:
    """Fit ``laws`` (one per target) per group on train rows and score them on test rows."""
    evaluation = score_split(laws, train, test, config=fit_config)
    return evaluation.scores, max(law.n_params for law in laws)


def score_fixed_constants(law: Law, constants: dict[str, float], test: SplitArrays) -> Scores:
    """Score a single-target law with given constants (no fit) on the test rows."""
    theta = np.array([constants[spec.name] for spec in law.constants], dtype=float)
    return score_predictions(test.Y[:, 0], law.predict(test.X, theta))


def score_human_task(task_name: str, *, corpus: str | Path | None = None, fit_config: FitConfig) -> TaskScore:
    """Fit the task's human-derived law on train rows and score it on test rows."""
    started = time.perf_counter()
    task = get_task(task_name)
    literature = human_law(task.name)
    train, test = load_task_splits(task, corpus=corpus)
    scores, n_params = score_laws(literature.laws, train, test, fit_config=fit_config)
    published_r2 = None
    if literature.published_constants is not None:
        published = score_fixed_constants(literature.laws[0], dict(literature.published_constants), test)
        published_r2 = finite_r2(published)
    return TaskScore(
        r2=finite_r2(scores),
        nmse=scores.nmse,
        nmae=scores.nmae,
        n_params=n_params,
        law=" ; ".join(law.text for law in literature.laws),
        seconds=round(time.perf_counter() - started, 3),
        published_constants_r2=published_r2,
    )


TaskScorer = Callable[[str], TaskScore]


def _score_task(scorer: TaskScorer, name: str) -> TaskScore:
    return scorer(name)


def run_bench(
    method: str,
    scorer: TaskScorer,
    *,
    task_names: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
    executor: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
) -> BenchResult:
    """Run ``scorer`` on each task and collect the results.

    Parameters
    ----------
    method : str
        Name written into the result (``"human"``, ``"sld"``).
    scorer : callable
        Maps a task name to its :class:`TaskScore`.
    task_names : sequence of str, optional
        Defaults to the 8 SLDBench tasks.
    progress : callable
        Receives one line per task (the CLI prints it on stderr).
    executor : {"local", "ray"}, default "local"
        ``ray``: every task is one Ray task (all at once; see :func:`sld.cluster.map_on_ray`).
    ray_address : str, optional
        With ``executor="ray"``: the cluster to join.
    """
    names = list(task_names) if task_names else [task.name for task in list_tasks()]

    def one_after_another() -> Iterator[tuple[int, TaskScore]]:
        for index, name in enumerate(names):
            progress(f"{method}: {name} ...")
            yield index, _score_task(scorer, name)

    if executor == "ray":
        from sld.cluster import map_on_ray

        progress(f"{method}: {len(names)} tasks on Ray ...")
        scored = map_on_ray(_score_task, scorer, names, address=ray_address)
    else:
        scored = one_after_another()
    finished: dict[str, TaskScore] = {}
    for index, score in scored:
        name = names[index]
        finished[name] = score
        progress(f"{method}: {name} R^2 {score.r2:.4f} ({score.seconds:.1f} s)")
    results = {name: finished[name] for name in names}
    mean = float(np.mean([clip_r2(score.r2) for score in results.values()])) if results else float("nan")
    return BenchResult(method=method, tasks=results, mean_r2=round(mean, 6))


def validation_vs_test(discovery: Discovery, test: SplitArrays, *, top: int = 8) -> dict[str, object]:
    """Score the top candidates on the test rows *after* the choice, to report how well validation ranked them.

    Only for reporting: nothing here feeds back into any choice.
    """
    from scipy.stats import spearmanr

    from sld.search.candidates import law_from_proposal
    from sld.search.warm_fits import fit_groups_warm

    pairs: list[tuple[float, float]] = []
    for index, outcome in enumerate(discovery.outcomes):
        for candidate in outcome.state.ranked()[:top]:
            law = law_from_proposal(candidate.proposal(), outcome.problem.variables)
            fit = fit_groups_warm(
                law,
                outcome.problem.X,
                outcome.problem.y,
                outcome.problem.groups,
                config=FitConfig(n_starts=6, seed=0),
                shared=frozenset(candidate.shared),
            )
            scores = score_predictions(test.Y[:, index], fit.predict(law, test.X, test.groups))
            pairs.append((candidate.validation_r2, finite_r2(scores)))
    finite = [(v, t) for v, t in pairs if math.isfinite(v) and math.isfinite(t)]
    # A rank correlation needs 3 pairs and two sides that vary (e.g. the top laws may all predict the same).
    varies = len(finite) >= 3 and all(len(set(sides)) > 1 for sides in zip(*finite, strict=True))
    rho = float(spearmanr(*zip(*finite, strict=True)).statistic) if varies else float("nan")
    return {"spearman_validation_test": None if math.isnan(rho) else round(rho, 4), "pairs": len(finite)}


def score_sld_split(
    task: Task,
    train: SplitArrays,
    test: SplitArrays,
    *,
    config: AgentConfig,
    run_dir: Path | None = None,
    llm: LLMClient | None = None,
    progress: Progress | None = None,
) -> tuple[TaskScore, np.ndarray | None]:
    """Discover a law on ``train`` with what ``sld discover`` runs and score it on ``test``.

    The one place the bench runs sld's discovery: every suite (SLDBench tasks, rnsl curves) goes through here.

    Parameters
    ----------
    task : Task
        What to discover.
    train, test : SplitArrays
        Rows to choose on, and rows scored once after the choice.
    config : AgentConfig
        Proposer, engine and stop settings (the same object ``sld discover`` builds).
    run_dir : Path, optional
        Keep the run directory here.
    llm : LLMClient, optional
        The LLM endpoint (or replay cache) of the ``llm`` and ``hybrid`` proposers.
    progress : Progress, optional
        Receives the run's notes and round statuses.

    Returns
    -------
    score : TaskScore
        ``law_returned=False`` (and failed scores) when no law could be fitted.
    predictions : ndarray of shape (n_test, n_targets), or None
        The chosen laws' predictions of the test rows; ``None`` without a law.
    """
    from sld.agent.discovery import predict_task
    from sld.agent.run import run_agent

    started = time.perf_counter()
    try:
        discovery = run_agent(task, train, test, config, run_dir=run_dir, llm=llm, progress=progress)
    except SearchError as exc:
        return TaskScore.no_law(str(exc), seconds=time.perf_counter() - started), None
    if discovery.test_scores is None:  # the bench's suites always have test rows
        raise ValueError(f"task {task.name} has no test rows to score")
    score = TaskScore(
        r2=finite_r2(discovery.test_scores),
        nmse=discovery.test_scores.nmse,
        nmae=discovery.test_scores.nmae,
        n_params=discovery.n_params,
        law=discovery.expression(),
        seconds=round(discovery.seconds, 3),
        validation_r2=discovery.validation_r2,
        candidates_evaluated=discovery.candidates_evaluated(),
        proposals=discovery.proposals(),
        ranking=validation_vs_test(discovery, test),
        shared=discovery.shared(),
        plausibility={outcome.problem.target: chosen_plausibility(outcome) for outcome in discovery.outcomes},
        uncertainty=discovery.uncertainty(),
        warnings=discovery.warnings(),
        llm=discovery.llm_summary() if discovery.proposer != "offline" else None,
        stopped=dict(discovery.stopped),
    )
    return score, predict_task(discovery, test)


def discover_task(
    task_name: str,
    *,
    corpus: str | Path | None,
    config: AgentConfig,
    run_root: Path | None = None,
    llm: LLMClient | None = None,
    progress: Progress | None = None,
) -> tuple[TaskScore, np.ndarray | None, np.ndarray]:
    """Discover a law for an SLDBench task on its train rows (:func:`score_sld_split`); score it on its test rows.

    Returns the score, the chosen laws' test predictions (``None`` without a law) and the test targets.
    """
    task = get_task(task_name)
    train, test = load_task_splits(task, corpus=corpus)
    run_dir = run_root / task.name if run_root else None
    score, predictions = score_sld_split(task, train, test, config=config, run_dir=run_dir, llm=llm, progress=progress)
    return score, predictions, test.Y


def score_operon_task(
    task_name: str, *, corpus: str | Path | None, budget_s: float, seed: int, fit_config: FitConfig
) -> TaskScore:
    """Score pyoperon on a task, run as a pyoperon user would, within the task's time and constant budget.

    The regressor sees all training rows of a target together (it knows no groups), with its own model
    selection. The score is its model refitted per group like every other law (SLDBench fits constants per
    group); ``alternatives["pooled_r2"]`` keeps the pooled model's own predictions. When a target's model does
    not read back as a law within the budget, the pooled predictions are the score.
    """
    from sld.search.operon_peer import OperonPeer

    started = time.perf_counter()
    task = get_task(task_name)
    train, test = load_task_splits(task, corpus=corpus)
    peers = []
    for index in range(len(task.targets)):
        peer = OperonPeer(max_params=task.max_params, time_limit_s=budget_s / len(task.targets), seed=seed)
        peers.append(peer.fit(train.X, train.Y[:, index], task.features))
    pooled = score_predictions(test.Y, np.column_stack([peer.predict(test.X) for peer in peers]))
    alternatives = {"pooled_r2": finite_r2(pooled)}
    scores, law = pooled, " ; ".join(peer.expression_ for peer in peers)
    n_params = task.max_params
    if all(peer.law_ is not None for peer in peers):
        laws = [parse_law(str(peer.law_), task.features) for peer in peers]
        scores, n_params = score_laws(laws, train, test, fit_config=fit_config)
        law = " ; ".join(item.text for item in laws)
        alternatives["refit_r2"] = finite_r2(scores)
    return TaskScore(
        r2=finite_r2(scores),
        nmse=scores.nmse,
        nmae=scores.nmae,
        n_params=n_params,
        law=law,
        seconds=round(time.perf_counter() - started, 3),
        alternatives=alternatives,
    )


def chosen_plausibility(outcome: SearchOutcome) -> dict[str, object]:
    """Return the chosen law's expression and plausibility checks, on the training rows it was chosen on."""
    problem = outcome.problem
    record = plausibility_record(
        outcome.law, outcome.fit, problem.X, problem.y, problem.groups, problem.region, problem.variables
    )
    return {"expression": outcome.best.expression, "variables": list(problem.variables), **record}
