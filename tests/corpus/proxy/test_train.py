from __future__ import annotations

import itertools
import math

import pytest

pytest.importorskip("torch")

from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.data import TextCorpus
from sld.corpus.proxy.train import lr_at, train_run

from .conftest import TINY_MODEL, tiny_train_config


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    config = TrainConfig(tokens=1, lr=1e-3, min_lr_ratio=0.1, warmup_fraction=0.1)
    rates = [lr_at(step, steps=100, config=config) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4)
    assert max(rates) == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-4, rel=0.01)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))


def test_steps_cover_the_budget() -> None:
    assert TrainConfig(tokens=1000, batch_size=4).steps(block_size=128) == 2
    assert TrainConfig(tokens=1024, batch_size=4).steps(block_size=128) == 2


def test_training_lowers_loss_and_is_deterministic(tiny_corpus: TextCorpus) -> None:
    messages: list[str] = []
    first = train_run(TINY_MODEL, tiny_train_config(tokens=1024), tiny_corpus, progress=messages.append)
    second = train_run(TINY_MODEL, tiny_train_config(tokens=1024), tiny_corpus)
    assert first.val_loss == second.val_loss
    assert first.val_loss < math.log(256)
    assert first.steps == 8 and first.tokens == 1024
    assert first.device == "cpu" and first.dtype == "float32"
    assert first.non_embedding_params == TINY_MODEL.non_embedding_params
    assert messages and messages[-1].startswith("step 8/8")
    other_seed = train_run(TINY_MODEL, tiny_train_config(tokens=1024, seed=1), tiny_corpus)
    assert other_seed.val_loss != first.val_loss


@pytest.mark.gpu
def test_cuda_run_uses_bf16(tiny_corpus: TextCorpus) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    config = TrainConfig(tokens=4096, batch_size=8, eval_tokens=256, device="cuda", compile=True)
    result = train_run(ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16), config, tiny_corpus)
    assert result.device.startswith("cuda") and result.dtype == "bfloat16"
    assert math.isfinite(result.val_loss) and result.val_loss < math.log(256)
