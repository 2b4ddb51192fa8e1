"""Load the 8 SLDBench tasks from a local corpus, the cache, or the Hugging Face hub.

The first source that answers wins:

1. the ``corpus`` argument (the CLI's ``--corpus PATH``),
2. the environment variable ``SLD_CORPUS``,
3. the local cache, ``$SLD_CACHE`` or ``~/.cache/sld/sldbench``,
4. the hub dataset ``pkuHaowei/sldbench``, whose files are then kept in the cache.

A corpus or cache folder holds ``<task>/train.parquet`` and ``<task>/test.parquet``. For example::

    sld tasks show parallel_scaling_law --corpus /data/sldbench
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import CorpusNotFound, SchemaError, UnknownTaskError, closest_name
from .hub import SPLITS, HubClient

# In the order of the benchmark's paper and leaderboard.
SLDBENCH_TASKS: tuple[str, ...] = (
    "parallel_scaling_law",
    "vocab_scaling_law",
    "sft_scaling_law",
    "domain_mixture_scaling_law",
    "moe_scaling_law",
    "data_constrained_scaling_law",
    "lr_bsz_scaling_law",
    "easy_question_scaling_law",
)


@dataclass(frozen=True, eq=False)
class TaskData:
    """The experiments of one SLDBench task, as stored: columns and their order are the files' own.

    Parameters
    ----------
    name : str
        The task, one of ``SLDBENCH_TASKS``.
    train : pandas.DataFrame
        Rows to fit on, shape (n_train, n_columns), with a ``group`` column.
    test : pandas.DataFrame or None
        Held-out rows, same columns; ``None`` when a corpus has no ``test.parquet``.
    source : str
        Where the rows came from: the task's folder, or ``hub:<dataset>/<task>`` right after a download.

    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame | None
    source: str


def default_cache_dir() -> Path:
    """Return the SLDBench cache folder: ``$SLD_CACHE`` if set, else ``~/.cache/sld/sldbench``."""
    configured = os.environ.get("SLD_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sld" / "sldbench"


def check_task_name(task: str) -> str:
    """Return ``task`` if it is an SLDBench task, else raise ``UnknownTaskError`` with the known names.

    Parameters
    ----------
    task : str
        A task name.

    Returns
    -------
    str
        The same name.

    Raises
    ------
    UnknownTaskError
        The message lists the known names and the closest one.

    Examples
    --------
    >>> check_task_name("moe_scaling_law")
    'moe_scaling_law'
    >>> try:
    ...     check_task_name("vocab")
    ... except UnknownTaskError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    Unknown task 'vocab'. Known: parallel_scaling_law, ... Did you mean 'vocab_scaling_law'?

    """
    if task in SLDBENCH_TASKS:
        return task
    guess = closest_name(task, SLDBENCH_TASKS)
    hint = f" Did you mean {guess!r}?" if guess else ""
    raise UnknownTaskError(f"Unknown task {task!r}. Known: {', '.join(SLDBENCH_TASKS)}.{hint}")


def load_sldbench(
    task: str,
    *,
    corpus: str | Path | None = None,
    cache_dir: str | Path | None = None,
    hub: HubClient | None = None,
) -> TaskData:
    """Load an SLDBench task's train and test rows from the first source that has them.

    Parameters
    ----------
    task : str
        One of ``SLDBENCH_TASKS``.
    corpus : str or Path, optional
        A folder with ``<task>/train.parquet`` (and ``<task>/test.parquet``); overrides ``$SLD_CORPUS``.
        When a corpus is given (either way) it must have the task: there is no fallback to the cache or hub.
    cache_dir : str or Path, optional
        The cache folder; default ``default_cache_dir()``. The hub's files are written there.
    hub : HubClient, optional
        The client used on a cache miss; default ``HubClient()`` (configured from ``HF_*`` variables).

    Returns
    -------
    TaskData
        The rows; ``source`` names the folder read, or is ``hub:pkuHaowei/sldbench/<task>`` after a download.

    Raises
    ------
    UnknownTaskError
        ``task`` is not an SLDBench task.
    CorpusNotFound
        The corpus folder does not exist or lacks the task; the message lists the files looked for.
    HubError
        The download failed or offline mode forbids it.
    SchemaError
        A file that is not readable parquet, or train and test with different columns.

    Examples
    --------
    >>> data = load_sldbench("parallel_scaling_law", corpus="/work/shared/sldbench")  # doctest: +SKIP
    >>> list(data.train.columns)  # doctest: +SKIP
    ['num_params', 'parallel_size', 'group', 'loss']

    """
    name = check_task_name(task)
    if corpus is not None:
        return _from_corpus(Path(corpus), name, origin="--corpus")
    configured = os.environ.get("SLD_CORPUS")
    if configured:
        return _from_corpus(Path(configured).expanduser(), name, origin="SLD_CORPUS")
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / name
    fix = f"Delete {folder} to download the task again."
    if all((folder / f"{split}.parquet").is_file() for split in SPLITS):
        return _read(folder, name, source=str(folder), fix=fix)
    client = hub if hub is not None else HubClient()
    client.download(name, folder, splits=SPLITS)
    return _read(folder, name, source=client.source(name), fix=fix)


def _from_corpus(root: Path, name: str, *, origin: str) -> TaskData:
    layout = "a folder with <task>/train.parquet and <task>/test.parquet (a copy of pkuHaowei/sldbench)"
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise CorpusNotFound(f"{origin} {root} {what}. Point {origin} at {layout}.")
    folder = root / name
    train, test = folder / "train.parquet", folder / "test.parquet"
    if not train.is_file() and (root / "train.parquet").is_file():
        raise CorpusNotFound(
            f"{origin} {root} is one task's folder (it has train.parquet); looked for {train}. "
            f"Point {origin} at its parent, {root.parent}, the folder that holds <task>/train.parquet."
        )
    if not train.is_file():
        present = sorted(task for task in SLDBENCH_TASKS if (root / task / "train.parquet").is_file())
        found = f" (tasks found there: {', '.join(present)})" if present else ""
        raise CorpusNotFound(
            f"{origin} {root} has no SLDBench task {name!r}: looked for {train} and {test}{found}. "
            f"Put the task's parquet files there, or point {origin} at {layout}."
        )
    fix = "Replace it with the task's file from pkuHaowei/sldbench."
    return _read(folder, name, source=str(folder), fix=fix)


def _read(folder: Path, name: str, *, source: str, fix: str) -> TaskData:
    train = _read_parquet(folder / "train.parquet", fix)
    test_path = folder / "test.parquet"
    test = _read_parquet(test_path, fix) if test_path.is_file() else None
    if test is not None and list(test.columns) != list(train.columns):
        raise SchemaError(
            f"{test_path}: columns {list(test.columns)} differ from train.parquet's {list(train.columns)}. "
            f"Use train and test files of the same dataset version."
        )
    return TaskData(name=name, train=train, test=test, source=source)


def _read_parquet(path: Path, fix: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file; all mean the same here.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaError(f"{path}: cannot be read as parquet ({reason}). {fix}") from exc
