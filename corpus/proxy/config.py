"""Configuration of one proxy training run: the model's shape and the optimisation schedule.

Both are frozen dataclasses, as in nanoGPT's ``GPTConfig``: a run is fully described by a
``(ModelConfig, TrainConfig)`` pair, and :func:`run_key` turns the pair into the stable id that a
sweep uses to skip finished runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer (GPT-2 style, pre-LayerNorm, tied embeddings).

    Parameters
    ----------
    n_layer : int
        Number of transformer blocks.
    n_head : int
        Attention heads per block; must divide ``n_embd``.
    n_embd : int
        Width of the residual stream.
    block_size : int, default 128
        Context length in tokens.
    vocab_size : int, default 256
        Byte-level tokens: every byte value is a token.

    """

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int = 128
    vocab_size: int = 256

    def __post_init__(self) -> None:
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size, self.vocab_size) < 1:
            raise ValueError(f"all sizes must be positive: {self}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_head={self.n_head} must divide n_embd={self.n_embd}")

    @property
    def non_embedding_params(self) -> int:
        """Parameters outside the token and position embeddings (Kaplan et al. 2020's N).

        Per block: attention ``4 d^2 + 4 d`` (qkv and output projections with biases removed
        except LayerNorm), MLP ``8 d^2``, two LayerNorms ``2 d`` (weight only); plus the final
        LayerNorm. Equals the count of :class:`~sld.corpus.proxy.model.GPT` parameters minus embeddings.
        """
        d = self.n_embd
        return self.n_layer * (12 * d * d + 2 * d) + d

    @property
    def embedding_params(self) -> int:
        """Parameters of the token and position embeddings (the output head is tied to the former)."""
        return (self.vocab_size + self.block_size) * self.n_embd


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one run: AdamW with linear warm-up and a cosine decay over the token budget.

    Each token budget is its own run whose schedule ends exactly at its budget, as in
    Hoffmann et al. 2022 (Chinchilla), where a run cut short of its cosine cycle overestimates loss.

    Parameters
    ----------
    tokens : int
        Training tokens D; rounded up to whole optimiser steps of ``batch_size * block_size`` tokens.
    batch_size : int, default 32
        Sequences per optimiser step.
    lr : float, default 3e-3
        Peak learning rate.
    min_lr_ratio : float, default 0.1
        Final learning rate as a fraction of the peak.
    warmup_fraction : float, default 0.05
        Share of the steps spent in linear warm-up (at least one step).
    weight_decay : float, default 0.1
        Decoupled weight decay on matrices; biases, LayerNorms and embeddings are not decayed.
    grad_clip : float, default 1.0
        Global gradient-norm clip; 0 disables it.
    seed : int, default 0
        Seeds the initialisation and the order of training windows.
    eval_tokens : int, default 65536
        Held-out tokens scored for the final validation loss (fixed windows, the same for every run).
    device : {"auto", "cpu", "cuda"}, default "auto"
        "auto" picks CUDA when available.
    compile : bool, default True
        ``torch.compile`` the model; only used on CUDA.

    """

    tokens: int
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    eval_tokens: int = 65_536
    device: Device = "auto"
    compile: bool = True

    def __post_init__(self) -> None:
        if self.tokens < 1 or self.batch_size < 1 or self.eval_tokens < 1:
            raise ValueError(f"tokens, batch_size and eval_tokens must be positive: {self}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def steps(self, block_size: int) -> int:
        """Optimiser steps that cover ``tokens`` with ``batch_size`` windows of ``block_size`` tokens."""
        per_step = self.batch_size * block_size
        return max(1, -(-self.tokens // per_step))


def run_key(model: ModelConfig, train: TrainConfig) -> str:
    """Return the stable id of a run, e.g. ``"L2-H2-E64-T128-D524288-lr0.003-B32-s0"``.

    Only the settings that change the result enter the key; the device does not.
    """
    return (
        f"L{model.n_layer}-H{model.n_head}-E{model.n_embd}-T{model.block_size}"
        f"-D{train.tokens}-lr{train.lr:g}-B{train.batch_size}-s{train.seed}"
    )
