"""Load a task's rows and turn its data frames into the arrays ``sld.search`` works on.

Example
-------
>>> from sld.tasks import get_task
>>> train, test = load_task_splits(get_task("proxy_scaling_law"))
>>> train.X.shape[1] == test.X.shape[1]
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sld.corpus import load_sldbench, validate_frame
from sld.corpus.embedded import EMBEDDED_TASK, load_embedded_task
from sld.search import SplitArrays
from sld.tasks.task import Task


def task_arrays(task: Task, frame: pd.DataFrame) -> SplitArrays:
    """Return features, targets and groups of ``frame`` in the task's order.

    Parameters
    ----------
    task : Task
        Which columns are features, targets and the group.
    frame : pandas.DataFrame
        Validated rows (see ``sld.corpus.validate_frame``).

    Returns
    -------
    SplitArrays
        ``X`` of shape (n, n_features), ``Y`` of shape (n, n_targets), ``groups`` of shape (n,) as str.
    """
    X = frame.loc[:, list(task.features)].to_numpy(dtype=float)
    Y = frame.loc[:, list(task.targets)].to_numpy(dtype=float)
    if task.group_column in frame.columns:
        groups = np.asarray(frame[task.group_column].astype(str).to_numpy(), dtype=str)
    else:
        groups = np.full(len(frame), "all", dtype=str)
    return SplitArrays(X=X, Y=Y, groups=groups)


def load_task_splits(task: Task, *, corpus: str | Path | None = None) -> tuple[SplitArrays, SplitArrays]:
    """Load, validate and convert a task's train and test rows (SLDBench, or the embedded default task).

    Parameters
    ----------
    task : Task
        An SLDBench task or the embedded one (``proxy_scaling_law``).
    corpus : str or Path, optional
        The SLDBench folder (default: ``$SLD_CORPUS``).
    """
    data = load_embedded_task() if task.name == EMBEDDED_TASK else load_sldbench(task.name, corpus=corpus)
    if data.test is None:
        raise ValueError(f"SLDBench task {task.name} has no test split")  # the loader always returns one

    def validated(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        return validate_frame(
            frame, source=f"{data.source}/{split}", features=task.features, targets=task.targets,
            group=task.group_column,
        )

    train, test = validated(data.train, "train"), validated(data.test, "test")
    return task_arrays(task, train), task_arrays(task, test)
