"""What every symbolic-regression backend shares: the protocol, input transforms, scoring and selection.

A backend searches expression space on transformed data (``log`` of wide positive variables, optionally of the
target), and hands back law forms over the original variable names whose numbers are free constants. The
engine refits those constants; the values found by the backend ride along as ``ProposedLaw.init``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
from numpy.typing import NDArray

from sld.search.backends.sympy_convert import Template, to_template
from sld.search.errors import ExpressionError, SearchError
from sld.search.expressions import parse_law

Array = NDArray[np.float64]

LOG_SPAN = 3.0
"""A strictly positive variable whose max/min exceeds this is given to the backend as its logarithm."""


# mypy run on the folder (not on the package tree of `make lint`) cannot resolve sld.*, hence the ignore.
class BackendUnavailable(SearchError):  # type: ignore[misc,unused-ignore]  # noqa: N818 (the architecture's name)
    """An optional symbolic-regression backend cannot run here (the message says how to install it)."""


@dataclass(frozen=True)
class ProposedLaw:
    """A law form found by symbolic regression.

    Attributes
    ----------
    expression : str
        Text over the original variables and constants ``c0, c1, ...``; `sld.search.parse_law` reads it.
    init : dict of str to float
        The constant values the backend found (a starting point for refitting).
    n_params : int
        Number of constants.
    size : int
        Number of nodes of the expression tree (the complexity axis of the Pareto front).
    r2 : float
        R^2 on the given data with ``init`` (in the original space of ``y``).
    """

    expression: str
    init: dict[str, float] = field(default_factory=dict)
    n_params: int = 0
    size: int = 0
    r2: float = -math.inf


@dataclass(frozen=True)
class InputTransform:
    """Which columns the backend sees as ``log(x)``.

    Attributes
    ----------
    variables : tuple of str
        Original names, in column order.
    logged : tuple of bool
        Per column, whether the backend gets ``log`` of it.
    positive : tuple of bool
        Per column, whether every value is > 0 (the sympy symbol is then declared positive).
    """

    variables: tuple[str, ...]
    logged: tuple[bool, ...]
    positive: tuple[bool, ...]

    @classmethod
    def choose(cls, X: Array, variables: Sequence[str], *, log_span: float = LOG_SPAN) -> InputTransform:
        """Log every strictly positive column spanning more than a factor ``log_span``.

        Parameters
        ----------
        X : ndarray, shape (n, n_vars)
            Finite feature values.
        variables : sequence of str
            Column names.
        log_span : float, default 3.0
            Minimum max/min ratio for a log transform.
        """
        positive = tuple(bool(np.all(X[:, j] > 0)) for j in range(X.shape[1]))
        logged = tuple(pos and float(np.max(X[:, j]) / np.min(X[:, j])) > log_span for j, pos in enumerate(positive))
        return cls(tuple(variables), logged, positive)

    def apply(self, X: Array) -> Array:
        """Return ``X`` with the logged columns replaced by their logarithm, shape (n, n_vars)."""
        Z = np.array(X, dtype=np.float64, copy=True)
        for j, flag in enumerate(self.logged):
            if flag:
                Z[:, j] = np.log(Z[:, j])
        return Z

    def symbols(self) -> list[sympy.Expr]:
        """Per column, the sympy expression the backend's input stands for (``log(N)`` or ``N``)."""
        result: list[sympy.Expr] = []
        for name, flag, pos in zip(self.variables, self.logged, self.positive, strict=True):
            symbol = sympy.Symbol(name, positive=True) if pos else sympy.Symbol(name, real=True)
            result.append(sympy.log(symbol) if flag else symbol)
        return result

    def input_names(self) -> list[str]:
        """Descriptive names of the transformed inputs (``log_N`` or ``N``), e.g. for backend logs."""
        return [f"log_{v}" if flag else v for v, flag in zip(self.variables, self.logged, strict=True)]


def check_data(X: object, y: object, variables: Sequence[str]) -> tuple[Array, Array, tuple[str, ...]]:
    """Validate shapes and keep the rows where ``X`` and ``y`` are finite.

    Parameters
    ----------
    X : array_like, shape (n, n_vars)
    y : array_like, shape (n,)
    variables : sequence of str, length n_vars

    Returns
    -------
    X, y : ndarray
        Float copies of the finite rows.
    variables : tuple of str

    Raises
    ------
    SearchError
        If shapes disagree or fewer than 3 finite rows remain.
    """
    X_arr = np.asarray(X, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    names = tuple(variables)
    if X_arr.ndim != 2 or X_arr.shape[1] != len(names) or X_arr.shape[0] != y_arr.shape[0]:
        raise SearchError(
            f"symbolic regression needs X of shape (n, {len(names)}) and y of shape (n,); "
            f"got X {X_arr.shape} and y {y_arr.shape} for variables ({', '.join(names)})"
        )
    rows = np.all(np.isfinite(X_arr), axis=1) & np.isfinite(y_arr)
    if int(rows.sum()) < 3:
        raise SearchError(f"symbolic regression needs at least 3 finite rows; got {int(rows.sum())}")
    return X_arr[rows], y_arr[rows], names


def r2_score(y: Array, prediction: Array) -> float:
    """R^2 of ``prediction`` against ``y``; ``-inf`` if any prediction is not finite."""
    if not np.all(np.isfinite(prediction)):
        return -math.inf
    total = float(np.sum((y - np.mean(y)) ** 2))
    residual = float(np.sum((y - prediction) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def make_proposal(
    expr: sympy.Expr, X: Array, y: Array, variables: tuple[str, ...], *, max_params: int
) -> ProposedLaw | None:
    """Turn a backend expression into a `ProposedLaw`, or None if it is unusable.

    Unusable: not convertible, not parseable by `parse_law`, more than ``max_params`` constants, or predictions
    that are not finite on the data with the backend's constant values.

    Parameters
    ----------
    expr : sympy.Expr
        Expression over the original variables (as sympy symbols) with float numbers.
    X : ndarray, shape (n, n_vars)
    y : ndarray, shape (n,)
    variables : tuple of str
    max_params : int
    """
    try:
        template: Template = to_template(expr, variables)
        if template.n_params > max_params:
            return None
        law = parse_law(template.text, variables)
    except (ExpressionError, RecursionError, TypeError, ValueError, OverflowError):
        # Anything sympy cannot turn into a law is simply not proposed.
        return None
    theta = np.array([template.values[name] for name in law.constant_names], dtype=np.float64)
    r2 = r2_score(y, law.predict(X, theta))
    if not math.isfinite(r2):
        return None
    size = sum(1 for _ in sympy.preorder_traversal(law.expr))
    return ProposedLaw(law.text, dict(zip(law.constant_names, theta.tolist(), strict=True)), law.n_params, size, r2)


def select_diverse(proposals: Sequence[ProposedLaw], n_laws: int) -> list[ProposedLaw]:
    """Deduplicate and pick up to ``n_laws`` proposals layer by layer along the Pareto front.

    Proposals with the same text keep the best R^2 (constants are numbered in reading order, so equal forms
    mostly print alike; the engine's canonical keys catch the rest). They are sorted into non-dominated layers
    over (size, 1 - R^2); layers are taken in turn, each from the most to the least accurate, so the result spans
    simple to complex forms before it repeats a complexity.

    Parameters
    ----------
    proposals : sequence of ProposedLaw
    n_laws : int

    Returns
    -------
    list of ProposedLaw
    """
    best: dict[str, ProposedLaw] = {}
    for proposal in proposals:
        key = proposal.expression
        if key not in best or proposal.r2 > best[key].r2:
            best[key] = proposal
    remaining = sorted(best.values(), key=lambda p: (-p.r2, p.size, p.expression))
    chosen: list[ProposedLaw] = []
    while remaining and len(chosen) < n_laws:
        layer: list[ProposedLaw] = []
        rest: list[ProposedLaw] = []
        for proposal in remaining:  # sorted by decreasing R^2: dominated iff an earlier one is no larger
            if any(other.size <= proposal.size for other in layer):
                rest.append(proposal)
            else:
                layer.append(proposal)
        chosen.extend(layer[: n_laws - len(chosen)])
        remaining = rest
    return chosen


class StructureBackend:
    """A source of law forms: data in, law texts with free constants (and the values found for them) out.

    Backends implement ``propose_laws``; ``propose`` (the texts alone) is shared.
    """

    name: str

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
        """Search law forms (each backend implements this)."""
        raise NotImplementedError

    def propose(
        self,
        X: Array,
        y: Array,
        variables: Sequence[str],
        *,
        max_params: int,
        n_laws: int = 20,
        seed: int = 0,
        time_limit_s: float = 30.0,
    ) -> list[str]:
        """Return up to ``n_laws`` law texts with at most ``max_params`` constants (see ``propose_laws``)."""
        laws = self.propose_laws(
            X, y, variables, max_params=max_params, n_laws=n_laws, seed=seed, time_limit_s=time_limit_s
        )
        return [law.expression for law in laws]
