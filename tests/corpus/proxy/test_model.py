from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sld.corpus.proxy.config import ModelConfig  # noqa: E402
from sld.corpus.proxy.model import GPT  # noqa: E402


def test_forward_shapes_and_loss() -> None:
    config = ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=8)
    model = GPT(config)
    idx = torch.randint(0, 256, (3, 8))
    logits, loss = model(idx, idx)
    assert tuple(logits.shape) == (3, 8, 256)
    assert loss is not None and loss.ndim == 0
    # At initialisation the model is close to uniform over 256 bytes.
    assert abs(loss.item() - torch.log(torch.tensor(256.0)).item()) < 0.5
    logits, loss = model(idx[:, :5])
    assert tuple(logits.shape) == (3, 5, 256) and loss is None


def test_backward_reaches_every_parameter() -> None:
    model = GPT(ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=8))
    idx = torch.randint(0, 256, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize(("n_layer", "n_embd"), [(1, 16), (2, 48), (3, 64)])
def test_parameter_count_matches_config(n_layer: int, n_embd: int) -> None:
    config = ModelConfig(n_layer=n_layer, n_head=2, n_embd=n_embd, block_size=32)
    model = GPT(config)
    assert model.num_params(non_embedding=True) == config.non_embedding_params
    assert model.num_params(non_embedding=False) == config.non_embedding_params + config.embedding_params


def test_longer_than_block_size_is_rejected() -> None:
    model = GPT(ModelConfig(n_layer=1, n_head=1, n_embd=8, block_size=4))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_config_rejects_bad_heads() -> None:
    with pytest.raises(ValueError, match="n_head"):
        ModelConfig(n_layer=1, n_head=3, n_embd=16)
