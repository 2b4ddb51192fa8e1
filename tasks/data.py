"""Turn a task's data frames into the arrays ``sld.search`` works on."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
