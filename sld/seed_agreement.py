"""Whether sld gives the same law whatever the seed: one task discovered at several seeds, compared.

The same data and budget should give the same law, or laws whose predictions agree; a choice that flips with the
seed between near-ties that disagree beyond the data is a choice the user cannot trust. ``sld bench --method sld
--seeds 0,1,2`` runs the discovery (:func:`sld.benchmark.score_sld_split`, what ``sld discover`` runs) once per
seed on every task and records, per task, each seed's score and law and how far apart the laws' test predictions
are. The test rows only measure the agreement; nothing is chosen on them.

Example
-------
>>> import numpy as np
>>> round(prediction_spread([np.array([[1.0], [2.0]]), np.array([[1.0], [2.2]])], np.array([[1.0], [3.0]])), 3)
0.05
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from sld.benchmark import TaskScore
from sld.side_by_side import cell, mean_r2, metric_value

# Laws of different seeds agree when their test predictions differ, on average over the rows, by at most this
# share of the observed test target's range (for the largest pair of seeds).
AGREEMENT = 0.05


def prediction_spread(predictions: Sequence[np.ndarray], observed: np.ndarray) -> float:
    """Return the largest, over pairs of seeds, mean absolute difference of their predictions, in target ranges.

    Parameters
    ----------
    predictions : sequence of ndarray of shape (n, targets)
        Each seed's predictions of the same rows.
    observed : ndarray of shape (n, targets)
        The rows' observed targets; each target's range is its unit.
    """
    span = np.ptp(observed, axis=0)
    span = np.where(span > 0, span, 1.0)
    spread = 0.0
    for first, second in itertools.combinations(predictions, 2):
        with np.errstate(all="ignore"):
            gap = float(np.mean(np.abs(first - second) / span))
        spread = max(spread, gap if math.isfinite(gap) else math.inf)
    return spread


class TaskAgreement(BaseModel):
    """One task's discoveries at each seed.

    Attributes
    ----------
    scores : dict
        Seed (as text) to its :class:`~sld.benchmark.TaskScore`.
    same_law : bool
        Every seed chose the same law (expression text and shared constants).
    prediction_spread : float or None
        :func:`prediction_spread` of the seeds' test predictions; ``None`` when a seed returned no law.
    agree : bool
        Same law, or a spread of at most ``AGREEMENT``.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    scores: dict[str, TaskScore]
    same_law: bool
    prediction_spread: float | None
    agree: bool


class SeedAgreement(BaseModel):
    """The JSON of ``sld bench --seeds``: per task, the seeds' laws and how well they agree."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    suite: str
    seeds: list[int]
    tasks: dict[str, TaskAgreement]
    mean_r2: dict[str, float]
    mean_log_rmse: dict[str, float] | None
    same_law: int
    agree: int


Discover = Callable[[str, int], tuple[TaskScore, np.ndarray | None, np.ndarray]]


def run_seeds(
    suite: str,
    discover: Discover,
    task_names: Sequence[str],
    seeds: Sequence[int],
    *,
    progress: Callable[[str], None] = lambda message: None,
) -> SeedAgreement:
    """Discover every task at every seed and compare the seeds' laws.

    Parameters
    ----------
    suite : str
        ``sldbench`` or ``rnsl`` (rnsl also records each seed's mean log-RMSE).
    discover : callable
        ``(task name, seed) -> (score, test predictions or None, observed test targets)``.
    task_names, seeds : sequence
        What to run (tasks outer, seeds inner).
    progress : callable
        Receives one line per task and seed.
    """
    tasks: dict[str, TaskAgreement] = {}
    for name in task_names:
        scores: dict[str, TaskScore] = {}
        predictions: list[np.ndarray] = []
        observed = np.empty(0)
        for seed in seeds:
            progress(f"seed {seed}: {name} ...")
            score, predicted, observed = discover(name, seed)
            scores[str(seed)] = score
            if predicted is not None:
                predictions.append(np.asarray(predicted, dtype=float).reshape(observed.shape))
            progress(f"seed {seed}: {name} R^2 {score.r2:.4f} {score.law[:80]}")
        identities = {(score.law, str(sorted((score.shared or {}).items()))) for score in scores.values()}
        returned = len(predictions) == len(seeds)
        same = returned and len(identities) == 1
        spread = prediction_spread(predictions, observed) if returned else None
        agree = same or (spread is not None and spread <= AGREEMENT)
        tasks[name] = TaskAgreement(scores=scores, same_law=same, prediction_spread=spread, agree=agree)
    by_seed = {str(seed): [task.scores[str(seed)] for task in tasks.values()] for seed in seeds}
    mean_log_rmse = None
    if suite == "rnsl":  # a missing log-RMSE (no law) counts as 1, as in the side-by-side tables
        mean_log_rmse = {
            key: round(float(np.mean([metric_value(score, "log_rmse") for score in scores])), 6)
            for key, scores in by_seed.items()
        }
    return SeedAgreement(
        suite=suite, seeds=list(seeds), tasks=tasks, mean_r2={key: mean_r2(scores) for key, scores in by_seed.items()},
        mean_log_rmse=mean_log_rmse, same_law=sum(task.same_law for task in tasks.values()),
        agree=sum(task.agree for task in tasks.values()),
    )


def markdown_seeds(result: SeedAgreement) -> str:
    """Render per task each seed's score, whether the laws are the same, and their prediction spread."""
    rnsl = result.mean_log_rmse is not None
    unit = "log-RMSE" if rnsl else "R^2"
    keys = [str(seed) for seed in result.seeds]
    lines = [
        f"| task | {' | '.join(f'seed {key} {unit}' for key in keys)} | same law | prediction spread | agree |",
        "|---" * (len(keys) + 4) + "|",
    ]
    for name, task in result.tasks.items():
        values = [_value(task.scores[key], rnsl) for key in keys]
        spread = "" if task.prediction_spread is None else f"{100 * task.prediction_spread:.1f}%"
        lines.append(
            f"| {name} | {' | '.join(values)} | {'yes' if task.same_law else 'no'} | {spread} | "
            f"{'yes' if task.agree else 'no'} |"
        )
    means = result.mean_log_rmse if result.mean_log_rmse is not None else result.mean_r2
    lines.append(f"| **mean** | {' | '.join(cell(means[key]) for key in keys)} | "
                 f"{result.same_law} of {len(result.tasks)} | | {result.agree} of {len(result.tasks)} |")
    return "\n".join(lines)


def _value(score: TaskScore, rnsl: bool) -> str:
    return cell(score.log_rmse if rnsl else score.r2) if score.law_returned else "no law"
