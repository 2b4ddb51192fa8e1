from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.presets import Preset

TINY_MODEL = ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)


def write_source_tree(root: Path, n_files: int = 40) -> Path:
    """Write ``n_files`` small deterministic Python files (a stand-in for the standard library)."""
    for index in range(n_files):
        folder = root / f"pkg{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{index}_{k}(x):\n    return x * {k} + {index}\n\n" for k in range(20))
        (folder / f"mod{index}.py").write_text(body)
    return root


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one thread: tiny models gain nothing from more, and lose much on a busy machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> TextCorpus:
    """A byte corpus of 40 generated source files, split 80/20."""
    return load_corpus(write_source_tree(tmp_path / "src"), val_fraction=0.2)


@pytest.fixture
def tiny_preset() -> Preset:
    """A 1-model x 2-budget grid of a few optimiser steps each, with three larger validation candidates."""
    return Preset(
        name="tiny",
        models=(TINY_MODEL,),
        tokens=(256, 512),
        batch_sizes=(8,),
        eval_tokens=256,
        compile=False,
        validation_models=(ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=16),),
        validation_tokens=(1024,),
        n_validation=1,
    )


def tiny_train_config(tokens: int = 512, seed: int = 0) -> TrainConfig:
    return TrainConfig(tokens=tokens, batch_size=8, eval_tokens=256, seed=seed, device="cpu", compile=False)
