"""Small data sets and scripted replies for the discovery-graph tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sld.search import SplitArrays
from sld.tasks import Task, generic_task

REPO = Path(__file__).resolve().parents[2]
# Read at import: the autouse fixture of tests/conftest.py removes SLD_* variables before each test.
_CORPUS_ENV = os.environ.get("SLD_CORPUS")
SHARED_SLDBENCH = (REPO / "shared" / "sldbench", REPO.parent / "shared" / "sldbench")

TOY_LAW = "E + A * N**(-alpha)"
PARSCALE_LAW = "(A / (num_params * (k*log(parallel_size) + 1)))**alpha + E"
JUNK_LAWS = (
    "__import__('os').system('true')",  # attribute access
    "N.__class__",  # attribute access
    "lambda: N",  # lambda
    "N**10**100",  # huge exponent
    "A * model_size**beta",  # wrong feature name: uses none of the variables
    "a + b*N + c*N**2 + d*N**3 + e*N**4",  # too many constants
)


def toy_frame(n_per_group: int = 20, seed: int = 0) -> pd.DataFrame:
    """Rows of loss = 2 + 30 N^-0.2 (times 1.3 in group b), with a little noise."""
    rng = np.random.default_rng(seed)
    N = np.tile(np.geomspace(1e6, 1e9, n_per_group), 2)
    g = np.repeat(["a", "b"], n_per_group)
    loss = 2 + 30 * N**-0.2 * np.where(g == "a", 1.0, 1.3) + rng.normal(0, 0.002, N.size)
    return pd.DataFrame({"N": N, "loss": loss, "g": g})


def toy_task() -> Task:
    """A one-feature task over :func:`toy_frame` (N, loss, groups in g)."""
    return generic_task(name="toy", features=("N",), targets=("loss",), group="g", max_params=4)


def toy_rows(n_per_group: int = 20) -> SplitArrays:
    """:func:`toy_frame` as training arrays."""
    frame = toy_frame(n_per_group)
    return SplitArrays(X=frame[["N"]].to_numpy(float), Y=frame[["loss"]].to_numpy(float),
                       groups=frame["g"].to_numpy(str))


def sldbench_corpus(task: str = "parallel_scaling_law") -> Path | None:
    """Return a folder holding the SLDBench task (``$SLD_CORPUS`` or the shared mirror), or None."""
    candidates = [Path(_CORPUS_ENV)] if _CORPUS_ENV else []
    for folder in [*candidates, *SHARED_SLDBENCH]:
        if (folder / task / "train.parquet").is_file():
            return folder
    return None
