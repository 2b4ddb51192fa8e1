"""Named sweep grids: which model sizes N and token budgets D a ``sld proxy sweep --preset`` trains.

    sld proxy sweep --preset cpu-tiny --out runs/cpu-tiny

``cpu-tiny`` (20 runs, about 4 minutes on 2 idle CPU cores) produced the embedded default dataset;
``gpu-small`` (20 runs) is sized for one ~25 minute session on a single H100-class GPU; ``smoke`` takes
seconds and exists to check an installation. Each preset also lists larger configurations, beyond its grid,
among which ``sld validate`` picks the runs that test the fitted laws' extrapolation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sld.corpus.errors import closest_name
from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.errors import ProxyError

Run = tuple[ModelConfig, TrainConfig]


@dataclass(frozen=True)
class Preset:
    """A sweep grid and the training settings shared by its runs.

    Parameters
    ----------
    name : str
        Recorded as the ``group`` of every experiment of the sweep.
    models : tuple of ModelConfig
        Model sizes of the grid.
    tokens : tuple of int
        Token budgets D of the grid; every model is trained once per budget, with its own schedule.
    lrs, batch_sizes, seeds : tuple
        Optional further grid axes (default one value each).
    eval_tokens : int
        Held-out tokens scored per run.
    compile : bool
        ``torch.compile`` on CUDA.
    validation_models, validation_tokens : tuple
        Extra sizes and budgets, beyond the grid, that :meth:`validation_runs` combines into candidates.
    validation_max_flops : float
        Candidates costing more than this (``6 N D``) are left out.
    n_validation : int
        How many candidates ``sld validate`` trains by default.
    gpus_per_run : int
        GPUs each run reserves when the runs go to a Ray cluster (``--executor ray``); 0 trains on CPUs.
    description : str
        One line for ``--help``.

    """

    name: str
    models: tuple[ModelConfig, ...]
    tokens: tuple[int, ...]
    lrs: tuple[float, ...] = (3e-3,)
    batch_sizes: tuple[int, ...] = (32,)
    seeds: tuple[int, ...] = (0,)
    eval_tokens: int = 65_536
    compile: bool = True
    validation_models: tuple[ModelConfig, ...] = ()
    validation_tokens: tuple[int, ...] = ()
    validation_max_flops: float = float("inf")
    n_validation: int = 2
    gpus_per_run: int = 0
    description: str = ""

    def train_config(self, tokens: int, *, lr: float, batch_size: int, seed: int) -> TrainConfig:
        """Return the run settings of this preset for one budget (device left to ``"auto"``)."""
        return TrainConfig(
            tokens=tokens,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            eval_tokens=self.eval_tokens,
            compile=self.compile,
        )

    def _product(self, models: tuple[ModelConfig, ...], tokens: tuple[int, ...]) -> list[Run]:
        runs = [
            (model, self.train_config(d, lr=lr, batch_size=bsz, seed=seed))
            for model, d, lr, bsz, seed in itertools.product(models, tokens, self.lrs, self.batch_sizes, self.seeds)
        ]
        # Cheapest first: a sweep cut short still covers the grid's small end, and progress shows early.
        return sorted(runs, key=lambda run: (run[0].non_embedding_params * run[1].tokens, run[1].tokens))

    def runs(self) -> list[Run]:
        """Return the grid's runs, cheapest first."""
        return self._product(self.models, self.tokens)

    def validation_runs(self) -> list[Run]:
        """Return candidate runs beyond the grid: a validation size or a validation budget, within the cap."""
        grid = {(model, d) for model in self.models for d in self.tokens}
        candidates = self._product(self.models + self.validation_models, self.tokens + self.validation_tokens)
        return [
            (model, train)
            for model, train in candidates
            if (model, train.tokens) not in grid
            and 6.0 * model.non_embedding_params * train.tokens <= self.validation_max_flops
        ]


def _cpu_tiny() -> Preset:
    models = (
        ModelConfig(n_layer=1, n_head=2, n_embd=32),
        ModelConfig(n_layer=2, n_head=2, n_embd=48),
        ModelConfig(n_layer=3, n_head=2, n_embd=64),
        ModelConfig(n_layer=4, n_head=3, n_embd=96),
    )
    tokens = tuple(2**k for k in range(17, 22))  # 131k .. 2.1M bytes: 32 .. 512 steps of 4096 tokens
    largest = 6.0 * models[-1].non_embedding_params * tokens[-1]
    return Preset(
        name="cpu-tiny",
        description="4 sizes (12k-443k params) x 5 budgets (131k-2.1M tokens); ~4 min on 2 idle CPU cores",
        models=models,
        tokens=tokens,
        eval_tokens=65_536,
        validation_models=(ModelConfig(n_layer=4, n_head=4, n_embd=128),),
        validation_tokens=(2**22,),
        validation_max_flops=2.0 * largest,
        n_validation=2,
    )


def _gpu_small() -> Preset:
    models = (
        ModelConfig(n_layer=2, n_head=2, n_embd=128, block_size=256),
        ModelConfig(n_layer=4, n_head=4, n_embd=256, block_size=256),
        ModelConfig(n_layer=6, n_head=6, n_embd=384, block_size=256),
        ModelConfig(n_layer=8, n_head=8, n_embd=512, block_size=256),
    )
    # The stdlib training split is ~9.6M bytes; 2^25 tokens is ~3.5 epochs, within the range where repeated
    # data is nearly as good as fresh (Muennighoff et al. 2023).
    tokens = tuple(2**k for k in range(21, 26))
    largest = 6.0 * models[-1].non_embedding_params * tokens[-1]
    return Preset(
        name="gpu-small",
        description="4 sizes (0.4M-25M params) x 5 budgets (2M-34M tokens); one ~25 min single-GPU session",
        models=models,
        tokens=tokens,
        lrs=(1e-3,),
        batch_sizes=(64,),
        eval_tokens=1_048_576,
        validation_models=(ModelConfig(n_layer=10, n_head=10, n_embd=640, block_size=256),),
        validation_tokens=(2**26,),
        validation_max_flops=2.0 * largest,
        n_validation=2,
        gpus_per_run=1,
    )


def _smoke() -> Preset:
    models = (
        ModelConfig(n_layer=1, n_head=1, n_embd=16, block_size=32),
        ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=32),
    )
    return Preset(
        name="smoke",
        description="2 sizes x 2 budgets of 8-16 steps each; checks an installation in seconds",
        models=models,
        tokens=(2048, 4096),
        batch_sizes=(8,),
        eval_tokens=1024,
        compile=False,
        validation_models=(ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=32),),
        validation_tokens=(8192,),
        n_validation=1,
    )


PRESETS: dict[str, Preset] = {preset.name: preset for preset in (_cpu_tiny(), _gpu_small(), _smoke())}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Raises
    ------
    ProxyError
        For an unknown name, listing the known ones.

    Examples
    --------
    >>> len(get_preset("cpu-tiny").runs())
    20

    """
    if name in PRESETS:
        return PRESETS[name]
    guess = closest_name(name, PRESETS)
    hint = f" Did you mean {guess!r}?" if guess else ""
    raise ProxyError(f"Unknown proxy preset {name!r}. Known: {', '.join(PRESETS)}.{hint}")
