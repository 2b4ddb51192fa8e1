"""Per-candidate overhead of the Ray candidate evaluator, in milliseconds (bench/README.md).

    python bench/ray_overhead.py --ray-address 127.0.0.1:6379

Evaluates proposals as Ray tasks kept one at a time (``capacity`` 1): the wall time per candidate minus the
evaluation's own time (``Candidate.seconds``, measured inside the worker) is what the Ray path adds: submission,
scheduling, the object-store round trip of the result. The same for the in-process path (``workers=1``, one BLAS
thread like a Ray worker) gives the reference. The problem's arrays are put in the store once per evaluator.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from sld.search.candidates import Problem
from sld.search.engine import EngineConfig, make_folds
from sld.search.pool import make_pool
from sld.search.proposals import Proposal


def main() -> None:
    """Print the in-process and the Ray wall time per candidate and their difference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ray-address", default="auto")
    parser.add_argument("--candidates", type=int, default=60)
    args = parser.parse_args()
    N = np.geomspace(1e6, 1e9, 12)
    problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
    folds = make_folds(problem, 0)
    proposals = [Proposal(f"E + A * (N / 1e6)**(-{k / 100:.2f})", source="family") for k in range(args.candidates)]
    threadpool_limits(limits=1, user_api="blas")
    lines = []
    for executor in ("local", "ray"):
        config = EngineConfig(executor=executor, ray_address=args.ray_address, n_starts=1)
        with make_pool(problem, folds, config) as evaluator:
            evaluator.capacity = 1  # one candidate in flight: the wall time is a sum of round trips
            evaluator.evaluate(proposals[:2], time.monotonic() + 600)  # warm: worker start, imports, compile cache
            started = time.perf_counter()
            done = evaluator.evaluate(proposals, time.monotonic() + 600)
            wall = (time.perf_counter() - started) / len(done) * 1e3
            fit = float(np.mean([candidate.seconds for candidate in done])) * 1e3
            lines.append(
                f"{executor}: {wall:.1f} ms/candidate wall, {fit:.1f} ms evaluating, {wall - fit:.1f} ms added"
            )
    print("; ".join(lines) + f" ({args.candidates} candidates)")


if __name__ == "__main__":
    main()
