"""pyoperon as a peer method: its ``SymbolicRegressor``, run the way a pyoperon user would, under sld's budgets.

This is not sld's Operon *backend* (``search/backends/operon.py``, which searches on logs and hands sld many
forms to fit and select); it is the baseline a researcher gets from pyoperon alone: one regressor fitted on the
training rows with its own model selection (minimum description length, pyoperon's default), a wall-clock limit,
and a tree-length limit that keeps the chosen model within the task's constant budget.

Groups: pyoperon knows nothing of groups, so the regressor sees all training rows together (``predict`` gives
this *pooled* model's predictions). :attr:`OperonPeer.law_` is the chosen model with its numbers as free
constants, so that a caller can refit them per group like every other law (``None`` when the model cannot be
read back as a law within the budget).

Example
-------
>>> import numpy as np
>>> N = np.geomspace(1e6, 1e9, 40)[:, None]
>>> peer = OperonPeer(max_params=4, time_limit_s=2, seed=0).fit(N, 2 + 3 * N[:, 0] ** -0.5, ["N"])
>>> peer.predict(N).shape
(40,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
from numpy.typing import NDArray

from sld.search.backends.base import check_data, make_proposal
from sld.search.backends.sympy_convert import parse_infix
from sld.search.errors import ExpressionError, SearchError

Array = NDArray[np.float64]
# Primitives a pyoperon user would allow for scaling laws; each has a law equivalent, so the model reads back.
ALLOWED_SYMBOLS = "add,sub,mul,div,exp,log,pow,constant,variable"


def max_length_for(max_params: int) -> int:
    """Return the tree length that keeps a model within ``max_params`` coefficients.

    Every leaf of an Operon tree carries one coefficient (a weighted variable or a constant), and linear scaling
    adds two (scale and intercept); a binary tree of length ``2k - 1`` has ``k`` leaves.

    Examples
    --------
    >>> max_length_for(4), max_length_for(7)
    (3, 9)
    """
    leaves = max(1, max_params - 2)
    return max(1, 2 * leaves - 1)


@dataclass
class OperonPeer:
    """One pyoperon ``SymbolicRegressor`` with its own model selection.

    Parameters
    ----------
    max_params : int
        Constant budget; sets the tree-length limit (:func:`max_length_for`) and the law read back.
    time_limit_s : float
        Wall-clock limit of the run (pyoperon's ``max_time``, whole seconds, at least 1).
    seed : int, default 0
        pyoperon's ``random_state``.
    optimizer_iterations : int, default 10
        Levenberg-Marquardt steps per individual (pyoperon's default is 0, which leaves numbers untuned).

    Attributes
    ----------
    model_ : pyoperon.sklearn.SymbolicRegressor
        The fitted regressor.
    expression_ : str
        The selected model over the variable names, as pyoperon prints it.
    law_ : str or None
        The same model with its numbers as constants ``c0, c1, ...`` (``sld.search.parse_law`` reads it), or
        ``None`` when it does not read back as a law with at most ``max_params`` constants.
    """

    max_params: int
    time_limit_s: float
    seed: int = 0
    optimizer_iterations: int = 10
    model_: object = field(default=None, init=False, repr=False)
    expression_: str = field(default="", init=False)
    law_: str | None = field(default=None, init=False)

    def fit(self, X: Array, y: Array, variables: Sequence[str]) -> OperonPeer:
        """Fit on training rows, ``X`` of shape (n, n_vars) and ``y`` of shape (n,); returns ``self``.

        Raises
        ------
        SearchError
            On bad shapes, too few finite rows, or a pyoperon failure.
        """
        from pyoperon.sklearn import SymbolicRegressor

        X, y, names = check_data(X, y, variables)
        max_length = max_length_for(self.max_params)
        model = SymbolicRegressor(
            allowed_symbols=ALLOWED_SYMBOLS,
            max_length=max_length,
            initialization_max_length=max_length,
            optimizer_iterations=self.optimizer_iterations,
            n_threads=1,
            random_state=self.seed % 2**32,
            max_time=max(1, math.ceil(self.time_limit_s)),
        )
        try:
            model.fit(X, y)
        except (RuntimeError, ValueError) as exc:
            raise SearchError(f"pyoperon failed: {exc}") from exc
        self.model_ = model
        symbols = {f"X{j + 1}": sympy.Symbol(name) for j, name in enumerate(names)}
        text = model.get_model_string(model.model_, 17)
        self.expression_ = text
        for j, name in reversed(list(enumerate(names))):  # X10 before X1
            self.expression_ = self.expression_.replace(f"X{j + 1}", name)
        try:
            proposal = make_proposal(parse_infix(text, symbols), X, y, names, max_params=self.max_params)
        except ExpressionError:
            proposal = None
        self.law_ = None if proposal is None else proposal.expression
        return self

    def predict(self, X: Array) -> Array:
        """Predict with the pooled model, ``X`` of shape (n, n_vars); returns shape (n,)."""
        if self.model_ is None:
            raise SearchError("OperonPeer is not fitted; call fit first")
        # pyoperon's Dataset rejects read-only arrays (SplitArrays freezes its rows), so hand it a copy.
        rows = np.array(X, dtype=np.float64, copy=True)
        return np.asarray(self.model_.predict(rows), dtype=np.float64)  # type: ignore[attr-defined]
