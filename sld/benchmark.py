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
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from sld.corpus import load_sldbench, validate_frame
from sld.corpus.embedded import EMBEDDED_TASK, load_embedded_task
from sld.discovery import TaskDiscovery, discover_task
from sld.search import FitConfig, Law, Scores, SplitArrays, clip_r2, evaluate_split, score_predictions
from sld.search.engine import EngineConfig
from sld.tasks import Task, get_task, list_tasks
from sld.tasks.data import task_arrays
from sld.tasks.literature import human_law


class TaskScore(BaseModel):
    """One method's official test scores on one task (discovery runs add their search statistics)."""

    model_config = ConfigDict(extra="forbid")

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


class BenchResult(BaseModel):
    """Scores of one method over several tasks; ``mean_r2`` clips each R^2 to [-1, 1] like the leaderboard."""

    method: str
    tasks: dict[str, TaskScore]
    mean_r2: float


def load_task_splits(task: Task, *, corpus: str | Path | None = None) -> tuple[SplitArrays, SplitArrays]:
    """Load, validate and convert a task's train and test rows (SLDBench, or the embedded default)."""
    data = load_embedded_task() if task.name == EMBEDDED_TASK else load_sldbench(task.name, corpus=corpus)
    if data.test is None:
        raise ValueError(f"SLDBench task {task.name} has no test split")  # the loader always returns one

    def validated(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        return validate_frame(
            frame,
            source=f"{data.source}/{split}",
            features=task.features,
            targets=task.targets,
            group=task.group_column,
        )

    train, test = validated(data.train, "train"), validated(data.test, "test")
    return task_arrays(task, train), task_arrays(task, test)


def _finite_r2(scores: Scores) -> float:
    return scores.r2 if math.isfinite(scores.r2) else -math.inf


def score_laws(
    laws: Sequence[Law], train: SplitArrays, test: SplitArrays, *, fit_config: FitConfig
) -> tuple[Scores, int]:
    """Fit ``laws`` (one per target) per group on train rows and score them on test rows."""
    evaluation = evaluate_split(laws, train, test, config=fit_config)
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
        published_r2 = _finite_r2(published)
    return TaskScore(
        r2=_finite_r2(scores),
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


def validation_vs_test(discovery: TaskDiscovery, test: SplitArrays, *, top: int = 8) -> dict[str, object]:
    """Score the top candidates on the test rows *after* the choice, to report how well validation ranked them.

    Only for reporting: nothing here feeds back into any choice.
    """
    from scipy.stats import spearmanr

    from sld.search.candidates import law_from_proposal
    from sld.search.families import Proposal
    from sld.search.warm_fits import fit_groups_warm

    pairs: list[tuple[float, float]] = []
    for index, outcome in enumerate(discovery.outcomes):
        for candidate in outcome.state.ranked()[:top]:
            law = law_from_proposal(Proposal(candidate.expression, bounds=candidate.bounds), outcome.problem.variables)
            fit = fit_groups_warm(
                law,
                outcome.problem.X,
                outcome.problem.y,
                outcome.problem.groups,
                config=FitConfig(n_starts=6, seed=0),
                shared=frozenset(candidate.shared),
            )
            scores = score_predictions(test.Y[:, index], fit.predict(law, test.X, test.groups))
            pairs.append((candidate.validation_r2, _finite_r2(scores)))
    finite = [(v, t) for v, t in pairs if math.isfinite(v) and math.isfinite(t)]
    rho = float(spearmanr(*zip(*finite, strict=True)).statistic) if len(finite) >= 3 else float("nan")
    return {"spearman_validation_test": None if math.isnan(rho) else round(rho, 4), "pairs": len(finite)}


def score_sld_task(
    task_name: str,
    *,
    corpus: str | Path | None,
    engine: EngineConfig,
    run_root: Path | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> TaskScore:
    """Discover a law for the task on its train rows, then score it on its test rows."""
    task = get_task(task_name)
    train, test = load_task_splits(task, corpus=corpus)
    discovery = discover_task(
        task, train, test, engine, run_dir=run_root / task.name if run_root else None, progress=progress
    )
    assert discovery.test_scores is not None
    return TaskScore(
        r2=_finite_r2(discovery.test_scores),
        nmse=discovery.test_scores.nmse,
        nmae=discovery.test_scores.nmae,
        n_params=discovery.n_params,
        law=discovery.expression(),
        seconds=round(discovery.seconds, 3),
        validation_r2=discovery.validation_r2,
        candidates_evaluated=discovery.candidates_evaluated(),
        proposals=discovery.proposals(),
        ranking=validation_vs_test(discovery, test),
        shared={outcome.problem.target: list(outcome.best.shared) for outcome in discovery.outcomes},
    )
