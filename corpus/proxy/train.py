"""Train one proxy model to its token budget and measure its final validation loss.

The loop is nanoGPT's ``train.py`` reduced to what a scaling-law point needs: AdamW, warm-up plus cosine
decay to the run's own budget, gradient clipping, bf16 autocast and ``torch.compile`` on CUDA, float32 on
CPU, and one evaluation at the end on fixed held-out windows.

    python -c "from sld.corpus.proxy.train import demo; demo()"
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.data import TextCorpus, eval_offsets
from sld.corpus.proxy.errors import ProxyError

if TYPE_CHECKING:
    import torch

    from sld.corpus.proxy.model import GPT

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """What one finished run measured.

    Attributes
    ----------
    val_loss : float
        Mean next-byte cross-entropy (nats) on the fixed validation windows, after the last step.
    train_loss : float
        Mean training loss over the last 10% of steps.
    tokens : int
        Tokens actually trained on (``steps * batch_size * block_size``).
    steps : int
        Optimiser steps.
    non_embedding_params, total_params : int
        Parameter counts of the trained model.
    train_time_s, wall_time_s : float
        Seconds in the training loop, and in the whole run (building, compiling, evaluating included).
    tokens_per_s : float
        Training throughput, ``tokens / train_time_s``.
    device, dtype : str
        Where and in which precision it ran: ``"cpu"`` and ``"float32"``, or for example
        ``"cuda:NVIDIA H100"`` and ``"bfloat16"``.

    """

    val_loss: float
    train_loss: float
    tokens: int
    steps: int
    non_embedding_params: int
    total_params: int
    train_time_s: float
    wall_time_s: float
    tokens_per_s: float
    device: str
    dtype: str


class Trainer(Protocol):
    """A function that trains one run; :func:`train_run` is the real one, tests inject fakes."""

    def __call__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        corpus: TextCorpus,
        *,
        progress: Progress | None = None,
    ) -> RunResult:
        """Train one run and return what it measured."""
        ...


def lr_at(step: int, *, steps: int, config: TrainConfig) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then cosine to ``min_lr_ratio``.

    Examples
    --------
    >>> config = TrainConfig(tokens=1, lr=1.0, min_lr_ratio=0.1, warmup_fraction=0.1)
    >>> [round(lr_at(s, steps=10, config=config), 3) for s in (0, 1, 9)]
    [1.0, 1.0, 0.127]

    """
    warmup = max(1, round(config.warmup_fraction * steps))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    min_lr = config.lr * config.min_lr_ratio
    return min_lr + 0.5 * (config.lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def resolve_device(device: str) -> str:
    """Turn ``"auto"`` into ``"cuda"`` when a CUDA device is available, else ``"cpu"``; check ``"cuda"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ProxyError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    return device


def train_run(
    model_config: ModelConfig,
    train_config: TrainConfig,
    corpus: TextCorpus,
    *,
    progress: Progress | None = None,
) -> RunResult:
    """Train a fresh model on ``corpus.train`` for ``train_config.tokens`` tokens; score it on ``corpus.val``.

    Parameters
    ----------
    model_config : ModelConfig
        Shape of the model.
    train_config : TrainConfig
        Budget, optimiser, seed and device.
    corpus : TextCorpus
        Byte tokens; see :func:`sld.corpus.proxy.data.load_corpus`.
    progress : callable, optional
        Receives a one-line status about ten times per run.

    Returns
    -------
    RunResult
        Final validation loss, counts, timings and device.

    """
    import torch

    from sld.corpus.proxy.model import GPT

    start = time.perf_counter()
    device = resolve_device(train_config.device)
    on_cuda = device == "cuda"
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else nullcontext()
    block = model_config.block_size

    torch.manual_seed(train_config.seed)
    model = GPT(model_config).to(device)
    optimizer = model.optimizer(lr=train_config.lr, weight_decay=train_config.weight_decay, betas=(0.9, 0.95))
    step_model = torch.compile(model) if on_cuda and train_config.compile else model

    train_tokens = torch.from_numpy(np.array(corpus.train, dtype=np.int64))
    if len(train_tokens) <= block + 1:
        raise ProxyError(f"the training split has {len(train_tokens)} tokens, fewer than block_size + 2")
    generator = torch.Generator().manual_seed(train_config.seed)
    window = torch.arange(block + 1)
    steps = train_config.steps(block)
    log_every = max(1, steps // 10)
    tail_losses: list[torch.Tensor] = []

    train_start = time.perf_counter()
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(train_tokens) - block - 1, (train_config.batch_size,), generator=generator)
        batch = train_tokens[starts[:, None] + window].to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps=steps, config=train_config)
        with autocast:
            _, loss = step_model(batch[:, :-1], batch[:, 1:])
        assert loss is not None  # targets were given
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train_config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimizer.step()
        if step >= steps - max(1, steps // 10):
            tail_losses.append(loss.detach())
        if progress is not None and (step % log_every == 0 or step == steps - 1):
            progress(f"step {step + 1}/{steps} loss {loss.item():.4f}")
    if on_cuda:
        torch.cuda.synchronize()
    train_time = time.perf_counter() - train_start

    val_loss = evaluate(step_model, corpus.val, config=train_config, block_size=block, device=device)
    tokens = steps * train_config.batch_size * block
    return RunResult(
        val_loss=val_loss,
        train_loss=float(torch.stack(tail_losses).float().mean()),
        tokens=tokens,
        steps=steps,
        non_embedding_params=model.num_params(non_embedding=True),
        total_params=model.num_params(non_embedding=False),
        train_time_s=train_time,
        wall_time_s=time.perf_counter() - start,
        tokens_per_s=tokens / max(train_time, 1e-9),
        device=f"cuda:{torch.cuda.get_device_name()}" if on_cuda else "cpu",
        dtype="bfloat16" if on_cuda else "float32",
    )


def evaluate(
    model: GPT | Callable[..., tuple[torch.Tensor, torch.Tensor | None]],
    val: NDArray[np.uint8],
    *,
    config: TrainConfig,
    block_size: int,
    device: str,
) -> float:
    """Mean cross-entropy over the fixed validation windows of :func:`~sld.corpus.proxy.data.eval_offsets`."""
    import torch

    offsets = torch.from_numpy(eval_offsets(len(val), block_size=block_size, eval_tokens=config.eval_tokens))
    tokens = torch.from_numpy(np.array(val, dtype=np.int64))
    window = torch.arange(block_size + 1)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()
    total, count = 0.0, 0
    if isinstance(model, torch.nn.Module):
        model.eval()
    with torch.no_grad(), autocast:
        for first in range(0, len(offsets), config.batch_size):
            chunk = offsets[first : first + config.batch_size]
            batch = tokens[chunk[:, None] + window].to(device)
            _, loss = model(batch[:, :-1], batch[:, 1:])
            assert loss is not None  # targets were given
            total += float(loss) * len(chunk)
            count += len(chunk)
    return total / count


def demo() -> None:
    """Train a 2-layer model on 65k stdlib bytes and print the result (a few seconds on a laptop)."""
    from sld.corpus.proxy.data import load_corpus

    result = train_run(
        ModelConfig(n_layer=2, n_head=2, n_embd=64),
        TrainConfig(tokens=65_536, eval_tokens=16_384),
        load_corpus(),
        progress=print,
    )
    print(result)
