"""Synthetic data and finished runs for the report, compare and gate tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sld.agent.state import AgentConfig
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy

QUICK = AgentConfig(engine=EngineConfig(backend="none", evolution_rounds=0, n_starts=2), stop=StopPolicy(budget_s=30))
SFT_GROUPS = ("('m-124M', 'flan')", "('m-124M', 'wiki')", "('m-774M', 'flan')")


@dataclass(frozen=True)
class FinishedRun:
    """A run directory and the files or corpus its rows came from."""

    run_dir: Path
    root: Path
    corpus: Path | None = None


def power_law_frame(groups: tuple[str, ...], sizes: np.ndarray, *, seed: int) -> pd.DataFrame:
    """Rows of ``loss = E_g + 30 N^-0.2`` (0.3 % noise), one block per group."""
    rng = np.random.default_rng(seed)
    frames = []
    for index, group in enumerate(groups):
        loss = 2.0 + 0.4 * index + 30.0 * sizes**-0.2
        frames.append(pd.DataFrame({"model": group, "N": sizes, "loss": loss * (1 + 0.003 * rng.standard_normal(
            len(sizes)))}))
    return pd.concat(frames, ignore_index=True)


def rectified_frame(sizes: np.ndarray, *, seed: int) -> pd.DataFrame:
    """Rows of Lin et al.'s rectified law ``A / (D^alpha + B) + C`` for three (model, dataset) groups."""
    rng = np.random.default_rng(seed)
    frames = []
    for index, group in enumerate(SFT_GROUPS):
        loss = 40.0 / (sizes ** (0.35 + 0.03 * index) + 30.0) + 1.2 + 0.2 * index
        frames.append(pd.DataFrame({"group": group, "sft_data_size": sizes.astype(np.int64),
                                    "sft_loss": loss * (1 + 0.002 * rng.standard_normal(len(sizes)))}))
    return pd.concat(frames, ignore_index=True)


def write_sft_corpus(root: Path) -> Path:
    """Write a small SLDBench-shaped corpus with sft_scaling_law and an anchors file beside it."""
    corpus = root / "sldbench"
    folder = corpus / "sft_scaling_law"
    folder.mkdir(parents=True)
    rectified_frame(np.array([200 * 2**k for k in range(12)]), seed=0).to_parquet(folder / "train.parquet",
                                                                                   index=False)
    rectified_frame(np.array([819200]), seed=1).to_parquet(folder / "test.parquet", index=False)
    (root / "reference").mkdir()
    anchors = {"systems": {"human-derived laws": {"r2": {"sft_scaling_law": 0.9571}},
                           "SLDAgent (GPT-5)": {"r2": {"sft_scaling_law": 0.993}}},
               "best_single_run_any_system": {"sft_scaling_law": 0.9945}}
    (root / "reference" / "sldbench_anchors.json").write_text(json.dumps(anchors))
    return corpus
