"""Score methods on the rnsl learning curves (Alabdulmohsin et al. 2022): the paper's M1-M4 and sld.

Each curve is fitted on its ``Training == 1`` rows and scored on its ``Training == 0`` rows by the paper's metric
(RMSE of log loss, :func:`sld.search.scoring.log_rmse`) and by R^2 (undefined, so ``nan``, on a curve with a
single extrapolation row, as every NMT curve has).

Example
-------
``sld bench --suite rnsl --method sld,m1,m2,m3,m4 --budget-s 20 --json rnsl.json``
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sld.benchmark import TaskScore, finite_r2, score_sld_split
from sld.corpus.rnsl import FEATURE, TARGET, RnslCurve
from sld.search import SplitArrays, score_predictions
from sld.search.power_laws import PeerName, make_peer
from sld.search.scoring import log_rmse
from sld.tasks import Task, generic_task
from sld.tasks.data import task_arrays

if TYPE_CHECKING:
    from sld.agent.llm import LLMClient
    from sld.agent.progress import Progress
    from sld.agent.state import AgentConfig

# The constant budget sld gets on a curve: that of the largest peer, M4 (beta, c, alpha, eps_inf, eps_0).
RNSL_MAX_PARAMS = 5


def rnsl_task(curve: RnslCurve) -> Task:
    """Return the task sld discovers on a curve: what ``sld discover --data`` builds for a one-feature table."""
    return generic_task(
        name=curve.name, features=[FEATURE], targets=[TARGET], max_params=RNSL_MAX_PARAMS, extrapolation_axis=FEATURE
    )


def curve_splits(curve: RnslCurve) -> tuple[SplitArrays, SplitArrays]:
    """Return a curve's training and extrapolation rows as arrays (one group, ``"all"``)."""
    task = rnsl_task(curve)
    return task_arrays(task, curve.train), task_arrays(task, curve.test)


def _scored(score: TaskScore, test: SplitArrays, predictions: np.ndarray) -> TaskScore:
    """Add the paper metric; R^2 is ``nan`` where the test losses do not vary (it is undefined there)."""
    rmse, se = log_rmse(test.Y[:, 0], predictions.ravel())
    defined = np.unique(test.Y[:, 0]).size > 1
    return score.model_copy(update={"log_rmse": rmse, "log_rmse_se": se, "r2": score.r2 if defined else math.nan})


def score_peer_curve(curve: RnslCurve, peer: PeerName) -> TaskScore:
    """Fit one of M1-M4, with the paper's settings for the curve's domain, and score it."""
    started = time.perf_counter()
    train, test = curve_splits(curve)
    estimator = make_peer(peer, curve.domain).fit(train.X[:, 0], train.Y[:, 0])
    predictions = estimator.predict(test.X[:, 0])
    scores = score_predictions(test.Y[:, 0], predictions)
    score = TaskScore(
        r2=finite_r2(scores),
        nmse=scores.nmse,
        nmae=scores.nmae,
        n_params=estimator.n_params,
        law=estimator.formula(),
        seconds=round(time.perf_counter() - started, 3),
    )
    return _scored(score, test, predictions)


def discover_curve(
    curve: RnslCurve,
    *,
    config: AgentConfig,
    run_root: Path | None = None,
    llm: LLMClient | None = None,
    progress: Progress | None = None,
) -> tuple[TaskScore, np.ndarray | None, np.ndarray]:
    """Discover a law on the curve's training rows (the bench's one discovery adapter) and score it.

    Returns the score (with the paper metric), the chosen law's test predictions (``None`` without one) and the
    test losses.
    """
    train, test = curve_splits(curve)
    run_dir = run_root / curve.name if run_root else None
    score, predictions = score_sld_split(
        rnsl_task(curve), train, test, config=config, run_dir=run_dir, llm=llm, progress=progress
    )
    return (score if predictions is None else _scored(score, test, predictions)), predictions, test.Y
