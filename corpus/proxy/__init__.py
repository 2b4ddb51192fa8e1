"""Proxy runs: train small byte-level GPTs on the Python standard library to add scaling-law experiments.

The pipeline maps one module per step, as nanoGPT does: ``config`` (run settings), ``data`` (the stdlib text
and its split), ``model`` (the GPT), ``train`` (one run), ``presets`` (grids), ``sweep`` (a grid into
``experiments.parquet``). torch is imported only when a model is trained.

    sld proxy sweep --preset cpu-tiny --out runs/cpu-tiny
"""

from sld.corpus.proxy.config import ModelConfig, TrainConfig, run_key
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import PRESETS, Preset, get_preset
from sld.corpus.proxy.sweep import (
    EXPERIMENTS_FILE,
    MANIFEST_FILE,
    read_experiments,
    read_manifest,
    run_sweep,
    train_runs,
)
from sld.corpus.proxy.train import RunResult, Trainer, train_run

__all__ = [
    "EXPERIMENTS_FILE",
    "MANIFEST_FILE",
    "PRESETS",
    "ModelConfig",
    "Preset",
    "ProxyError",
    "RunResult",
    "TextCorpus",
    "TrainConfig",
    "Trainer",
    "get_preset",
    "load_corpus",
    "read_experiments",
    "read_manifest",
    "run_key",
    "run_sweep",
    "train_run",
    "train_runs",
]
