"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def corpus_option(function: F) -> F:
    """Add ``--corpus PATH`` (SLDBench folder; overrides ``SLD_CORPUS``, the cache and the hub)."""
    return click.option(
        "--corpus",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help="Folder with <task>/{train,test}.parquet (default: $SLD_CORPUS, then the cache, then the hub).",
    )(function)


def split_names(value: str | None) -> tuple[str, ...]:
    """Split a comma-separated flag value into names, dropping blanks."""
    return tuple(name.strip() for name in (value or "").split(",") if name.strip())


def executor_options(function: F) -> F:
    """Add ``--executor local|ray`` and ``--ray-address ADDRESS`` (default ``$RAY_ADDRESS``, then ``auto``)."""
    function = click.option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        default="auto",
        show_default=True,
        help="With --executor ray: the cluster (HOST:PORT of the head node, auto, or local to start one here); "
        "$RAY_ADDRESS is used when set.",
    )(function)
    return click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="local: this machine (--workers processes); ray: a Ray cluster, one candidate per cluster CPU "
        "(pip install 'sld[ray]'). Same answers.",
    )(function)
