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


def rnsl_option(function: F) -> F:
    """Add ``--rnsl PATH`` (folder of the rnsl ``benchmark.lang.csv``; overrides ``SLD_RNSL``)."""
    return click.option(
        "--rnsl",
        "rnsl_root",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help="With --suite rnsl: folder with benchmark.lang.csv (default: $SLD_RNSL, then ../shared/rnsl beside "
        "the checkout).",
    )(function)


def split_names(value: str | None) -> tuple[str, ...]:
    """Split a comma-separated flag value into names, dropping blanks."""
    return tuple(name.strip() for name in (value or "").split(",") if name.strip())


# --executor and --ray-address, shared by discover, bench (through discovery_options), proxy sweep and validate.
EXECUTOR_OPTIONS = (
    click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="local: this machine (--workers processes); ray: a Ray cluster, one candidate per cluster CPU "
        "(pip install 'sld[ray]'). Same answers.",
    ),
    click.option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        default="auto",
        show_default=True,
        help="With --executor ray: the cluster (HOST:PORT of the head node, auto, or local to start one here); "
        "$RAY_ADDRESS is used when set.",
    ),
)


def executor_options(function: F) -> F:
    """Add ``--executor local|ray`` and ``--ray-address ADDRESS`` (default ``$RAY_ADDRESS``, then ``auto``)."""
    for option in reversed(EXECUTOR_OPTIONS):
        function = option(function)
    return function
