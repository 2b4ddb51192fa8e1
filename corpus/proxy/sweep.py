"""Train a preset's grid of proxy runs and record one experiment per run, resumably.

    sld proxy sweep --preset cpu-tiny --out runs/cpu-tiny

Each finished run writes its row to ``OUT/experiments.runs/<run_id>.json``; one merge, at the start and end of
a sweep, adds the rows to ``OUT/experiments.parquet`` (columns :data:`COLUMNS`). A restarted sweep skips the runs
recorded in either; runs may train in parallel (``--executor ray``, one GPU each for a GPU preset). ``OUT/sweep.json``
records the preset, the data hash, the code version and package versions; a folder holding another preset's
sweep is refused rather than mixed.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from sld.corpus.proxy.config import Device, ModelConfig, TrainConfig, run_key
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import Preset, Run
from sld.corpus.proxy.train import RunResult, Trainer, train_run
from sld.corpus.validation import validate_frame

EXPERIMENTS_FILE = "experiments.parquet"
MANIFEST_FILE = "sweep.json"
FEATURES = ("params", "tokens")
TARGET = "loss"
# The experiment schema: the law's columns first (group, N, D, loss), then provenance.
COLUMNS = (
    "group",
    "run_id",
    "params",
    "tokens",
    "loss",
    "flops",
    "lr",
    "bsz",
    "seed",
    "n_layer",
    "n_head",
    "n_embd",
    "block_size",
    "vocab_size",
    "embedding_params",
    "total_params",
    "steps",
    "batch_tokens",
    "epochs",
    "train_loss",
    "wall_time_s",
    "train_time_s",
    "tokens_per_s",
    "device",
    "dtype",
    "torch_version",
    "code_version",
    "data_sha256",
    "python_version",
    "finished_at",
)

Log = Callable[[str], None]
# The modules whose source decides what a run measures; their hash is the recorded code version.
TRAINING_MODULES = ("config.py", "data.py", "model.py", "train.py")


def code_version() -> str:
    """Return ``"<sld version>+proxy.<hash>"``, the hash covering the modules that decide a run's result.

    The hash is of the code of :data:`TRAINING_MODULES` (config, data, model, train loop), read as syntax
    trees without docstrings and with imports sorted, so it changes when the training code does and not
    when it is reformatted, commented or documented; it needs no git checkout.
    """
    from sld import __version__

    hasher = hashlib.sha256()
    for name in TRAINING_MODULES:
        hasher.update(name.encode())
        hasher.update(_code_fingerprint(Path(__file__).with_name(name).read_text()).encode())
    return f"{__version__}+proxy.{hasher.hexdigest()[:12]}"


def _code_fingerprint(source: str) -> str:
    """Return a dump of ``source``'s syntax tree without docstrings, its top-level imports sorted."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    imports = sorted(ast.dump(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    code = [ast.dump(node) for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(imports + code)


def experiment_row(
    group: str, model: ModelConfig, train: TrainConfig, result: RunResult, corpus: TextCorpus
) -> dict[str, Any]:
    """Build the experiments-table row of one finished run (keys are :data:`COLUMNS`)."""
    params = model.non_embedding_params
    row = {
        "group": group,
        "run_id": run_key(model, train),
        "params": params,
        "tokens": result.tokens,
        "loss": result.val_loss,
        "flops": 6.0 * params * result.tokens,  # Kaplan et al. 2020: C = 6 N D
        "lr": train.lr,
        "bsz": train.batch_size,
        "seed": train.seed,
        "n_layer": model.n_layer,
        "n_head": model.n_head,
        "n_embd": model.n_embd,
        "block_size": model.block_size,
        "vocab_size": model.vocab_size,
        "embedding_params": model.embedding_params,
        "total_params": result.total_params,
        "steps": result.steps,
        "batch_tokens": train.batch_size * model.block_size,
        "epochs": result.tokens / len(corpus.train),
        "train_loss": result.train_loss,
        "wall_time_s": result.wall_time_s,
        "train_time_s": result.train_time_s,
        "tokens_per_s": result.tokens_per_s,
        "device": result.device,
        "dtype": result.dtype,
        "torch_version": _version("torch"),
        "code_version": code_version(),
        "data_sha256": corpus.sha256,
        "python_version": platform.python_version(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return row


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def read_experiments(path: str | Path) -> pd.DataFrame:
    """Read an experiments table and check its law columns (``group``, ``params``, ``tokens``, ``loss``).

    Parameters
    ----------
    path : str or Path
        A parquet file written by :func:`train_runs`.

    Returns
    -------
    pandas.DataFrame
        All columns, one row per run, in the file's order.

    Raises
    ------
    SchemaError
        When a law column is missing, non-finite or not positive.

    """
    frame = pd.read_parquet(path)
    validate_frame(
        frame, source=path, features=FEATURES, targets=(TARGET,), group="group", positive=(*FEATURES, TARGET)
    )
    return frame


def _prefixed(log: Log, prefix: str) -> Log:
    def prefixed(message: str) -> None:
        log(f"{prefix}: {message}")

    return prefixed


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class Mapper(Protocol):
    """Runs ``fn(shared, item)`` for every item and yields ``(index, result)`` as each finishes.

    :func:`map_in_process` is the default; ``sld.cluster.ray_mapper`` runs each item as a Ray task.
    """

    def __call__(self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], /) -> Iterator[tuple[int, R]]:
        """Yield ``(index, fn(shared, items[index]))`` for every item, in finishing order."""
        ...


def map_in_process(fn: Callable[[S, T], R], shared: S, items: Sequence[T], /) -> Iterator[tuple[int, R]]:
    """Run ``fn(shared, item)`` for every item here, one after another (the default :class:`Mapper`)."""
    for index, item in enumerate(items):
        yield index, fn(shared, item)


@dataclasses.dataclass(frozen=True)
class _SweepJob:
    """What every run of one ``train_runs`` call shares (shipped once to a cluster's object store)."""

    group: str
    corpus: TextCorpus
    device: Device
    trainer: Trainer
    log: Log


def _train_one(job: _SweepJob, run: Run) -> dict[str, Any]:
    """Train one run and return its experiments row (runs in this process or in a Ray worker)."""
    model, train = run
    train = dataclasses.replace(train, device=job.device)
    prefix = run_key(model, train)
    job.log(f"{prefix}: N={model.non_embedding_params:,} D={train.tokens:,}")
    result = job.trainer(model, train, job.corpus, progress=_prefixed(job.log, prefix))
    return experiment_row(job.group, model, train, result, job.corpus)


def run_rows_dir(path: str | Path) -> Path:
    """Return the folder of per-run rows of the experiments table at ``path`` (``experiments.runs/``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.runs")


def _write_run_row(row: dict[str, Any], folder: Path) -> None:
    """Write one finished run's row as ``<run_id>.json`` (atomically: a killed sweep leaves no half file)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row['run_id']}.json"
    tmp = folder / f".{target.name}.tmp"
    tmp.write_text(json.dumps(row) + "\n")
    os.replace(tmp, target)


def merge_runs(path: str | Path, *, order: Sequence[str] = ()) -> pd.DataFrame:
    """Add the per-run rows not yet in the experiments table at ``path`` to it; return the whole table.

    The one writer of the table: runs (here or on a cluster) only write their own row file, and this merge,
    at the start and the end of a sweep, adds the new rows and keeps the whole table in ``order`` (run ids; rows of
    other runs after, in the order they were added). A sweep killed after a later run of its grid finished first
    thus still ends with its rows in grid order. The table is rewritten (atomically) only when there is something
    new.
    """
    path = Path(path)
    table = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(COLUMNS))
    done = set(table["run_id"])
    folder = run_rows_dir(path)
    rows = [json.loads(file.read_text()) for file in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    new = [row for row in rows if row["run_id"] not in done]
    if not new:
        return table
    rank = {run_id: index for index, run_id in enumerate(order)}
    new.sort(key=lambda row: (rank.get(row["run_id"], len(rank)), row["run_id"]))
    frame = pd.DataFrame(new, columns=list(COLUMNS))
    table = frame if table.empty else pd.concat([table, frame], ignore_index=True)
    if rank:
        position = table["run_id"].map(lambda run_id: rank.get(run_id, len(rank)))
        table = table.iloc[np.argsort(position.to_numpy(), kind="stable")].reset_index(drop=True)
    _write_atomic(table, path)
    return table


def train_runs(
    runs: Sequence[Run],
    path: str | Path,
    *,
    group: str,
    corpus: TextCorpus,
    device: Device = "auto",
    trainer: Trainer = train_run,
    log: Log | None = None,
    mapper: Mapper = map_in_process,
) -> pd.DataFrame:
    """Train the runs not yet recorded at ``path``, each writing its own row file, then merge them into ``path``.

    Parameters
    ----------
    runs : sequence of (ModelConfig, TrainConfig)
        The runs, in the order to train them (and of their rows in the table).
    path : str or Path
        The experiments parquet file; created when absent. Each finished run's row is first written to
        ``<stem>.runs/<run_id>.json`` beside it (see :func:`merge_runs`), so runs trained in parallel never
        rewrite a shared table, and a killed sweep resumes without training its finished runs again.
    group : str
        Written to the ``group`` column.
    corpus : TextCorpus
        Training and validation bytes.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Overrides the device of every run's ``TrainConfig``.
    trainer : callable, default :func:`~sld.corpus.proxy.train.train_run`
        Trains one run; tests inject a fake.
    log : callable, optional
        Receives one-line progress messages.
    mapper : Mapper, default :func:`map_in_process`
        Where the runs train: here, one after another, or e.g. one Ray task each (``sld.cluster.ray_mapper``).

    Returns
    -------
    pandas.DataFrame
        The whole table after the last run (previous rows included).

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = [run_key(model, train) for model, train in runs]
    table = merge_runs(path, order=order)  # rows of runs a killed sweep finished
    done = set(table["run_id"])
    say = log or (lambda _message: None)
    todo = [run for run, key in zip(runs, order, strict=True) if key not in done]
    if len(todo) < len(runs):
        say(f"{len(runs) - len(todo)} of {len(runs)} runs already in {path}; skipping them")
    if not todo:
        return table
    folder = run_rows_dir(path)
    job = _SweepJob(group=group, corpus=corpus, device=device, trainer=trainer, log=say)
    for finished, (_, row) in enumerate(mapper(_train_one, job, todo), start=1):
        _write_run_row(row, folder)
        say(
            f"[{finished}/{len(todo)}] {row['run_id']}: loss {row['loss']:.4f} in {row['wall_time_s']:.1f}s "
            f"({row['tokens_per_s']:,.0f} tokens/s on {row['device']})"
        )
    return merge_runs(path, order=order)


def _manifest(preset: Preset, corpus: TextCorpus, device: Device) -> dict[str, Any]:
    versions = {package: _version(package) for package in ("torch", "numpy", "pandas")}
    return {
        "preset": preset.name,
        "grid": {
            "models": [model.__dict__ for model in preset.models],
            "tokens": list(preset.tokens),
            "lrs": list(preset.lrs),
            "batch_sizes": list(preset.batch_sizes),
            "seeds": list(preset.seeds),
            "eval_tokens": preset.eval_tokens,
        },
        "device": device,
        "code_version": code_version(),
        "data": {
            "root": corpus.root,
            "sha256": corpus.sha256,
            "train_tokens": len(corpus.train),
            "val_tokens": len(corpus.val),
            "train_files": len(corpus.train_files),
            "val_files": len(corpus.val_files),
        },
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """Return the ``sweep.json`` of a sweep folder.

    Raises
    ------
    ProxyError
        When the folder has no ``sweep.json``.

    """
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        raise ProxyError(f"{out_dir} is not a proxy sweep folder (no {MANIFEST_FILE}); run `sld proxy sweep` first")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def run_sweep(
    preset: Preset,
    out_dir: str | Path,
    *,
    device: Device = "auto",
    corpus: TextCorpus | None = None,
    trainer: Trainer = train_run,
    log: Log | None = None,
    mapper: Mapper = map_in_process,
    max_runs: int | None = None,
) -> pd.DataFrame:
    """Train ``preset``'s grid into ``out_dir``, skipping runs that are already recorded there.

    Parameters
    ----------
    preset : Preset
        The grid; see :func:`~sld.corpus.proxy.presets.get_preset`.
    out_dir : str or Path
        Folder for ``experiments.parquet`` and ``sweep.json``.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train.
    corpus : TextCorpus, optional
        Defaults to the standard library's source (:func:`~sld.corpus.proxy.data.load_corpus`).
    trainer : callable, default :func:`~sld.corpus.proxy.train.train_run`
        Trains one run.
    log : callable, optional
        Receives one-line progress messages.
    mapper : Mapper, default :func:`map_in_process`
        Where the runs train (see :func:`train_runs`).
    max_runs : int, optional
        Train only the grid's ``max_runs`` cheapest runs (a first look, or a check of a cluster).

    Returns
    -------
    pandas.DataFrame
        The sweep's experiments, one row per run.

    Raises
    ------
    ProxyError
        When ``out_dir`` holds a sweep of another preset or of other data.

    """
    out = Path(out_dir)
    corpus = load_corpus() if corpus is None else corpus
    if (out / MANIFEST_FILE).exists():
        previous = read_manifest(out)
        if previous.get("preset") != preset.name:
            raise ProxyError(
                f"{out} holds a sweep of preset {previous.get('preset')!r}, not {preset.name!r}; "
                "choose another --out folder"
            )
        if previous.get("data", {}).get("sha256") != corpus.sha256:
            raise ProxyError(
                f"{out} was trained on other data (sha256 {previous.get('data', {}).get('sha256')}), "
                f"not {corpus.sha256} (another Python version?); choose another --out folder"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).write_text(json.dumps(_manifest(preset, corpus, device), indent=2) + "\n")
    return train_runs(
        preset.runs()[:max_runs],
        out / EXPERIMENTS_FILE,
        group=preset.name,
        corpus=corpus,
        device=device,
        trainer=trainer,
        log=log,
        mapper=mapper,
    )
