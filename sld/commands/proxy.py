"""``sld proxy sweep`` trains small GPTs to add experiments; ``sld validate`` tests laws on larger runs.

    sld proxy sweep --preset cpu-tiny --out runs/cpu-tiny
    sld validate --sweep runs/cpu-tiny --run runs/discover --json validation.json

torch is imported only when a run is trained, so ``sld --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sld.commands.options import executor_options
from sld.corpus.proxy.config import Device
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import PRESETS, Preset, get_preset

if TYPE_CHECKING:
    from sld.corpus.proxy.sweep import Mapper

_DEVICES = ("auto", "cpu", "cuda")


def _log(message: str) -> None:
    click.echo(message, err=True)


@functools.cache
def _stdlib_corpus() -> TextCorpus:
    # Read once per process: the standard library does not change while sld runs.
    return load_corpus()


def _prepare_torch(threads: int | None) -> None:
    """Check that torch is installed (a clean error otherwise) and set its CPU thread count."""
    try:
        import torch
    except ImportError as exc:
        raise ProxyError(
            "proxy training needs torch; install it with `pip install 'sld[gpu]'` (or `pip install torch`)"
        ) from exc
    if threads is not None:
        torch.set_num_threads(threads)


def _device_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--device",
        type=click.Choice(_DEVICES),
        default="auto",
        show_default=True,
        help="Where to train; auto picks CUDA when available (bf16 + torch.compile), else CPU (float32).",
    )(function)


def _threads_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="CPU threads for torch (default: torch's choice, usually the number of cores).",
    )(function)


def run_gpus(preset: Preset, device: Device) -> int:
    """Return the GPUs each Ray task of a sweep reserves.

    The preset's (1 for ``gpu-small``), at least 1 with ``--device cuda``, none with ``--device cpu``.
    """
    return 0 if device == "cpu" else max(preset.gpus_per_run, int(device == "cuda"))


def _mapper(executor: str, ray_address: str, preset: Preset, device: Device) -> Mapper:
    """Return where the runs train: here, one after another, or one Ray task each."""
    from sld.corpus.proxy.sweep import map_in_process

    if executor == "local":
        return map_in_process
    from sld.cluster import ray_mapper

    return ray_mapper(ray_address, num_gpus=run_gpus(preset, device))


@click.group("proxy")
def command() -> None:
    """Train proxy language models on the Python standard library to add experiments."""


@command.command("sweep")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    required=True,
    help="; ".join(f"{name}: {preset.description}" for name, preset in sorted(PRESETS.items())),
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for experiments.parquet and sweep.json; rerunning resumes, skipping finished runs.",
)
@click.option("--max-runs", type=click.IntRange(min=1), default=None,
              help="Train only the grid's N cheapest runs (a first look, or a check of a cluster).")
@_device_option
@_threads_option
@executor_options
def sweep(preset: str, out_dir: Path, max_runs: int | None, device: Device, threads: int | None, executor: str,
          ray_address: str) -> None:
    """Train a preset's grid over model size N and tokens D; one experiment row per run."""
    from sld.corpus.proxy.sweep import EXPERIMENTS_FILE, run_sweep

    _prepare_torch(threads)
    grid = get_preset(preset)
    table = run_sweep(grid, out_dir, device=device, corpus=_stdlib_corpus(), log=_log,
                      mapper=_mapper(executor, ray_address, grid, device), max_runs=max_runs)
    columns = ["run_id", "params", "tokens", "loss", "wall_time_s", "tokens_per_s"]
    click.echo(table[columns].to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    click.echo(f"wrote {out_dir / EXPERIMENTS_FILE} ({len(table)} runs)", err=True)


@click.command("validate")
@click.option(
    "--sweep",
    "sweep_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder written by `sld proxy sweep`: the laws are fitted on its runs.",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A `sld discover --run-dir` folder whose top laws to test (default: Chinchilla and two variants).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report as JSON to this file ('-' for stdout).",
)
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="Discovered laws to test.")
@click.option(
    "--n-runs",
    type=click.IntRange(min=1),
    default=None,
    help="Validation runs to train (default: the preset's).",
)
@_device_option
@_threads_option
@executor_options
def validate_command(
    sweep_dir: Path,
    run_dir: Path | None,
    json_path: Path | None,
    top: int,
    n_runs: int | None,
    device: Device,
    threads: int | None,
    executor: str,
    ray_address: str,
) -> None:
    """Pre-register laws' predictions for larger runs, train those runs, and score the predictions."""
    from sld.corpus.proxy.sweep import read_manifest
    from sld.proxy_validation import validate_sweep

    _prepare_torch(threads)
    mapper = _mapper(executor, ray_address, get_preset(read_manifest(sweep_dir)["preset"]), device)
    report = validate_sweep(
        sweep_dir, run_dir=run_dir, top=top, n_runs=n_runs, device=device, corpus=_stdlib_corpus(), log=_log,
        mapper=mapper,
    )
    for law in report["laws"]:
        error = law["abs_rel_error"]
        click.echo(f"{'fit failed' if error is None else f'{error:.4f}':>10}  {law['expression']}")
    best = report["best_abs_rel_error"]
    click.echo(f"best abs. relative error: {'none' if best is None else f'{best:.4f}'}")
    if json_path is not None:
        text = json.dumps(report, indent=2) + "\n"
        if str(json_path) == "-":
            sys.stdout.write(text)
        else:
            json_path.write_text(text)
            _log(f"wrote {json_path}")
