"""Turn a task and its training rows into the per-target search problems of ``sld.search``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sld.search import SplitArrays
from sld.search.candidates import Problem
from sld.search.plausibility import infer_region
from sld.search.selection import ProbeRegion
from sld.tasks.task import Task


def scale_order(task: Task, X: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Return each row's position along the task's extrapolation axis (``None`` when it has none).

    A single axis feature orders rows by its value (its log when positive); several order rows by the sum of
    their logs, i.e. by their product (e.g. N * D, proportional to compute).
    """
    if not task.extrapolation_axis:
        return None
    columns = [task.features.index(name) for name in task.extrapolation_axis]
    values = X[:, columns]
    if np.all(values > 0):
        return np.asarray(np.log(values).sum(axis=1), dtype=float)
    return np.asarray(values.sum(axis=1), dtype=float)


def task_problems(task: Task, train: SplitArrays, *, max_params: int | None = None) -> list[Problem]:
    """Return one search problem per target of ``task`` over the training rows only.

    Parameters
    ----------
    task : Task
        Features, targets, budget, axis and declared trends.
    train : SplitArrays
        Training rows (the test rows never enter a problem).
    max_params : int, optional
        Override of the task's constant budget.
    """
    region = ProbeRegion(
        axis_columns=tuple(task.features.index(name) for name in task.extrapolation_axis),
        monotone={task.features.index(name): trend for name, trend in task.monotone.items()},
        optima=tuple(task.features.index(name) for name in task.optima),
    )
    order = scale_order(task, train.X)
    return [
        Problem(
            variables=task.features,
            X=train.X,
            y=train.Y[:, index],
            groups=train.groups,
            order=order,
            max_params=max_params or task.max_params,
            # What the task does not declare (trends, a loss's floor, a rate's range) is read from its train rows.
            region=infer_region(region, train.X, train.Y[:, index], train.groups, target=target),
            target=target,
        )
        for index, target in enumerate(task.targets)
    ]
