"""The embedded default dataset: proxy runs that sld trained itself, shipped with the package.

``experiments.parquet`` holds the ``cpu-tiny`` sweep (byte-level GPTs trained on the Python standard
library's source, on CPU); ``README.md`` beside it says how it was produced. One row per run: the group
``cpu-tiny``, the features ``params`` (non-embedding parameters, N) and ``tokens`` (D), the target ``loss``
(validation cross-entropy in nats per byte), and provenance columns.

Examples
--------
>>> frame = load_embedded()
>>> sorted(set(frame["group"]))
['cpu-tiny']
>>> frame[["params", "tokens", "loss"]].gt(0).all().all()
np.True_

"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sld.corpus.proxy.sweep import FEATURES, TARGET, read_experiments
from sld.corpus.sldbench import TaskData

EXPERIMENTS_PATH = Path(__file__).with_name("experiments.parquet")
GROUP = "group"

__all__ = ["EMBEDDED_TASK", "EXPERIMENTS_PATH", "FEATURES", "GROUP", "TARGET", "load_embedded", "load_embedded_task"]


def load_embedded() -> pd.DataFrame:
    """Return the embedded experiments, one row per proxy run, checked against the experiment schema.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`sld.corpus.proxy.sweep.COLUMNS`; ``params``, ``tokens`` and ``loss`` positive.

    """
    return read_experiments(EXPERIMENTS_PATH)


EMBEDDED_TASK = "proxy_scaling_law"


def load_embedded_task() -> TaskData:
    """Return the embedded experiments as a task: the largest token budget is held out as the test rows.

    Extrapolating in data is what a scaling law is for; the held-out rows are every model trained on the
    largest token budget of the sweep.

    Returns
    -------
    TaskData
        ``train`` and ``test`` frames (all columns), named :data:`EMBEDDED_TASK`.
    """
    frame = load_embedded()
    largest = frame["tokens"] == frame["tokens"].max()
    return TaskData(
        name=EMBEDDED_TASK,
        train=frame.loc[~largest].reset_index(drop=True),
        test=frame.loc[largest].reset_index(drop=True),
        source=f"embedded:{EXPERIMENTS_PATH.name}",
    )
