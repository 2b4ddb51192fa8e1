"""Symbolic regression with pyoperon (Burlacu et al. 2020), on log-transformed inputs and target.

Operon evolves expression trees with NSGA-II over (R^2, length) and tunes their numbers with
Levenberg-Marquardt. It runs on ``log`` of each wide positive variable, once on ``y`` and once on ``log y``
(when ``y > 0``): with logs on both sides a power law is a linear model, and ``c0 + c1*exp(c2*log N)`` is the
offset power law ``c0 + c1*N**c2``. Every model of each run's Pareto front is mapped back to the original
variables; its numbers, including the scale and offset of Operon's linear scaling, become free constants.

Example
-------
>>> import numpy as np
>>> from sld.search.backends import get_backend
>>> N = np.geomspace(1e6, 1e9, 50)
>>> laws = get_backend("operon").propose(N[:, None], 2 + 3 * N**-0.5, ["N"], max_params=3, n_laws=5)
>>> 0 < len(laws) <= 5
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import sympy
from pydantic import BaseModel, ConfigDict, Field

from sld.search.backends.base import (
    Array,
    InputTransform,
    ProposedLaw,
    StructureBackend,
    check_data,
    make_proposal,
    select_diverse,
)
from sld.search.backends.sympy_convert import parse_infix
from sld.search.errors import ExpressionError, SearchError


class OperonConfig(BaseModel):
    """Settings of the Operon backend (one run per target transform and restart).

    Attributes
    ----------
    allowed_symbols : str
        Operon primitives; only functions with a law equivalent are understood (exp log sqrt tanh abs
        square pow and the four operations).
    population_size, generations, max_evaluations : int
        Budget of one run (an evaluation includes the coefficient tuning steps).
    optimizer_iterations : int
        Levenberg-Marquardt steps per individual.
    max_length : int or None
        Tree length limit; None derives it from ``max_params`` (``2 * max_params + 3``, within 7..25).
    restarts : int
        Runs per target transform, with seeds ``seed, seed + 1, ...``.
    log_target : bool
        Also search on ``log y`` when every ``y > 0``.
    log_span : float
        A positive variable spanning more than this factor is given as ``log``.
    max_rows : int
        Operon searches on at most this many rows (a seeded subsample; the cost of a run grows with rows);
        proposals are scored on all rows.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_symbols: str = "add,sub,mul,div,exp,log,sqrt,square,constant,variable"
    population_size: int = Field(default=200, ge=10)
    generations: int = Field(default=60, ge=1)
    max_evaluations: int = Field(default=100_000, ge=100)
    optimizer_iterations: int = Field(default=5, ge=0)
    max_length: int | None = Field(default=None, ge=3)
    restarts: int = Field(default=2, ge=1)
    log_target: bool = True
    log_span: float = Field(default=3.0, gt=1.0)
    max_rows: int = Field(default=400, ge=10)


class OperonBackend(StructureBackend):
    """Structure search with ``pyoperon.sklearn.SymbolicRegressor`` (single-threaded, seeded).

    Parameters
    ----------
    config : OperonConfig, optional
        Budget and primitives.
    """

    name = "operon"

    def __init__(self, config: OperonConfig | None = None) -> None:
        self.config = config or OperonConfig()

    def propose_laws(
        self,
        X: Array,
        y: Array,
        variables: Sequence[str],
        *,
        max_params: int,
        n_laws: int = 20,
        seed: int = 0,
        time_limit_s: float = 30.0,
    ) -> list[ProposedLaw]:
        """Search for law forms and return a diverse set along the Pareto front of size against R^2.

        Parameters
        ----------
        X : ndarray, shape (n, n_vars)
            Features; rows with non-finite values (in ``X`` or ``y``) are ignored.
        y : ndarray, shape (n,)
            Target.
        variables : sequence of str
            Names of the columns of ``X``; the returned texts use them.
        max_params : int
            Most constants a returned law may have.
        n_laws : int, default 20
            Most laws returned.
        seed : int, default 0
            Seed of the first run (restarts use ``seed + 1, ...``); equal seeds give equal output unless the
            time limit cuts runs short.
        time_limit_s : float, default 30.0
            Wall-clock limit for all runs together; the default budget needs a few seconds on 2000 rows.

        Returns
        -------
        list of ProposedLaw
            Distinct forms, with the values Operon found as ``init``.

        Raises
        ------
        SearchError
            If the data have the wrong shape or too few finite rows.
        """
        if max_params < 0 or n_laws < 1:
            raise SearchError(f"need max_params >= 0 and n_laws >= 1; got {max_params} and {n_laws}")
        X, y, names = check_data(X, y, variables)
        transform = InputTransform.choose(X, names, log_span=self.config.log_span)
        seed %= 2**32  # Operon and numpy want non-negative seeds
        rows = np.arange(len(y))
        if len(rows) > self.config.max_rows:
            rows = np.sort(np.random.default_rng(seed).choice(rows, self.config.max_rows, replace=False))
        Z, y_search = transform.apply(X[rows]), y[rows]
        targets: list[tuple[bool, Array]] = [(False, y_search)]
        if self.config.log_target and bool(np.all(y > 0)):
            targets.append((True, np.log(y_search)))
        runs = [(logged, target, seed + k) for k in range(self.config.restarts) for logged, target in targets]
        deadline = time.monotonic() + time_limit_s
        proposals: list[ProposedLaw] = []
        for index, (log_y, target, run_seed) in enumerate(runs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            share = remaining / (len(runs) - index)
            for expr in self._run(Z, target, transform, max_params=max_params, seed=run_seed, max_time_s=share):
                proposal = make_proposal(sympy.exp(expr) if log_y else expr, X, y, names, max_params=max_params)
                if proposal is not None:
                    proposals.append(proposal)
        chosen: list[ProposedLaw] = select_diverse(proposals, n_laws)
        return chosen

    def _run(
        self, Z: Array, target: Array, transform: InputTransform, *, max_params: int, seed: int, max_time_s: float
    ) -> list[sympy.Expr]:
        """One Operon run; the models of its Pareto front as sympy over the original variables."""
        import pyoperon as op
        from pyoperon.sklearn import SymbolicRegressor

        config = self.config
        max_length = config.max_length or min(25, max(7, 2 * max_params + 3))
        model = SymbolicRegressor(
            allowed_symbols=config.allowed_symbols,
            objectives=["r2", "length"],
            max_length=max_length,
            initialization_max_length=max_length,
            population_size=config.population_size,
            generations=config.generations,
            max_evaluations=config.max_evaluations,
            optimizer_iterations=config.optimizer_iterations,
            n_threads=1,
            random_state=seed,
            max_time=max(1, math.ceil(max_time_s)),
        )
        try:
            model.fit(Z, target)
        except (RuntimeError, ValueError) as exc:
            raise SearchError(f"pyoperon failed: {exc}") from exc
        # Operon names its inputs X1, X2, ... by column; map each to what the column stands for.
        symbols = {f"X{j + 1}": symbol for j, symbol in enumerate(transform.symbols())}
        expressions: list[sympy.Expr] = []
        for entry in model.pareto_front_:
            # The formatter directly, not get_model_string, which warns about models without variables.
            text = op.InfixFormatter.Format(entry["tree"], model.variables_, 17)
            try:
                expressions.append(parse_infix(text, symbols))
            except ExpressionError:
                continue  # a primitive with no law equivalent
        return expressions
