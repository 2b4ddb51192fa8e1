"""Whole units of work as Ray tasks: benchmark tasks and proxy training runs (``--executor ray``).

    sld bench --method sld --executor ray --ray-address auto
    sld proxy sweep --preset gpu-small --out runs/gpu-small --executor ray

:func:`map_on_ray` runs ``fn(shared, item)`` for each item as one Ray task and yields the results as they finish;
``shared`` goes to the object store once. Candidate fits inside a benchmark task go to the same cluster through
``sld.search.ray_pool`` (a task waiting for its candidates gives its CPU back to them, so nesting cannot
deadlock). ``ray`` is imported only when a mapping starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sld.search.ray_pool import TASK_RETRIES, connect

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


def map_on_ray(
    fn: Callable[[S, T], R],
    shared: S,
    items: Sequence[T],
    *,
    address: str | None = None,
    num_gpus: float = 0,
) -> Iterator[tuple[int, R]]:
    """Run ``fn(shared, item)`` for every item as one Ray task; yield ``(index, result)`` in finishing order.

    Parameters
    ----------
    fn : callable
        Module-level function (Ray ships it by reference to the workers).
    shared : object
        Passed to every call; stored in the object store once.
    items : sequence
        One task each.
    address : str, optional
        Cluster to join (see :func:`sld.search.ray_pool.connect`).
    num_gpus : float, default 0
        GPUs each task reserves (1 for a GPU training run); Ray sets ``CUDA_VISIBLE_DEVICES`` accordingly.

    Raises
    ------
    ClusterUnavailable
        When no cluster answers at ``address``.
    """
    ray = connect(address)
    remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=TASK_RETRIES)(fn)
    shared_ref = ray.put(shared)
    pending: dict[Any, int] = {remote.remote(shared_ref, item): index for index, item in enumerate(items)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                yield index, ray.get(ref)
    finally:
        # A caller that stops early (an error, Ctrl-C) leaves no task running on the cluster.
        for ref in pending:
            ray.cancel(ref, force=True)


def ray_mapper(address: str | None, *, num_gpus: float = 0) -> Callable[..., Iterator[tuple[int, Any]]]:
    """Return :func:`map_on_ray` bound to a cluster and a GPU request (the ``mapper`` of ``train_runs``)."""

    def mapper(fn: Callable[[S, T], R], shared: S, items: Sequence[T]) -> Iterator[tuple[int, R]]:
        return map_on_ray(fn, shared, items, address=address, num_gpus=num_gpus)

    return mapper
