"""Fit some constants once for all groups and the others per group, in one joint least-squares problem.

SLDBench fits a law's constants per group (one set per model family, dataset, benchmark...). Often an exponent is
a property of the law rather than of the group: sharing it across groups pools the groups' evidence, which
steadies the extrapolation of groups with few rows. Which constants to share is searched like the form itself
(`sld.search.evolution.sharing_variants`); this module fits a given choice.

Example
-------
>>> import numpy as np
>>> from sld.search.expressions import parse_law
>>> from sld.search.fitting import FitConfig
>>> law = parse_law("E + A * x**(-alpha)", ("x",))
>>> x = np.tile(np.geomspace(1, 100, 8), 2)
>>> groups = np.repeat(["a", "b"], 8)
>>> y = np.where(groups == "a", 1 + 2 * x**-0.5, 3 + 1 * x**-0.5)
>>> fit = fit_shared(law, x[:, None], y, groups, shared=frozenset({"alpha"}), config=FitConfig(seed=0))
>>> [round(float(fit.fits[g].params[2]), 4) for g in ("a", "b")]
[0.5, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from sld.search.expressions import Law
from sld.search.fitting import FitConfig, FitResult, GroupedFit

FloatArray = NDArray[np.float64]

# Residuals of non-finite predictions become this (times the target scale), as in `sld.search.fitting`.
_PENALTY = 1e6


def shared_identity(expression: str, shared: tuple[str, ...] | frozenset[str]) -> str:
    """Return the text that identifies a law together with its shared constants.

    Examples
    --------
    >>> shared_identity("E + A*x**(-alpha)", frozenset({"alpha"}))
    'E + A*x**(-alpha)  [shared: alpha]'
    >>> shared_identity("E + A*x**(-alpha)", ())
    'E + A*x**(-alpha)'
    """
    return f"{expression}  [shared: {', '.join(sorted(shared))}]" if shared else expression


def effective_params(n_params: int, n_shared: int, n_groups: int) -> float:
    """Return the constants per group once shared ones are spread over the groups (for the complexity penalty).

    Examples
    --------
    >>> effective_params(4, 1, 4)
    3.25
    """
    if n_groups < 2:
        return float(n_params)
    return n_params - n_shared * (1.0 - 1.0 / n_groups)


class _JointProblem:
    """Residuals and Jacobian over ``[shared free constants, then each group's own free constants]``."""

    def __init__(self, law: Law, X: FloatArray, y: FloatArray, groups: NDArray[np.str_], shared: frozenset[str]):
        self.law = law
        self.names = sorted({str(g) for g in groups})
        self.rows = [np.flatnonzero(groups == name) for name in self.names]
        self.cols = [np.ascontiguousarray(X[rows].T) for rows in self.rows]
        self.y = y
        self.lower = np.array([c.lower for c in law.constants], dtype=float)
        self.upper = np.array([c.upper for c in law.constants], dtype=float)
        free = self.lower < self.upper
        is_shared = np.array([name in shared for name in law.constant_names])
        self.shared_free = free & is_shared
        self.own_free = free & ~is_shared
        self.n_shared, self.n_own = int(self.shared_free.sum()), int(self.own_free.sum())
        self.penalty = _PENALTY * (1.0 + float(np.max(np.abs(y))))

    @property
    def size(self) -> int:
        return self.n_shared + self.n_own * len(self.names)

    def pack(self, params: Mapping[str, FloatArray], shared_values: FloatArray) -> FloatArray:
        own = [np.asarray(params[name])[self.own_free] for name in self.names]
        return np.concatenate([shared_values[self.shared_free], *own])

    def theta(self, z: FloatArray, index: int) -> FloatArray:
        theta = self.lower.copy()  # fixed constants (lower == upper) keep their value
        theta[self.shared_free] = z[: self.n_shared]
        start = self.n_shared + index * self.n_own
        theta[self.own_free] = z[start : start + self.n_own]
        return theta

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        lower = [self.lower[self.shared_free]] + [self.lower[self.own_free]] * len(self.names)
        upper = [self.upper[self.shared_free]] + [self.upper[self.own_free]] * len(self.names)
        return np.concatenate(lower), np.concatenate(upper)

    def residuals(self, z: FloatArray) -> FloatArray:
        out = np.empty(self.y.size)
        for index, (rows, cols) in enumerate(zip(self.rows, self.cols, strict=True)):
            out[rows] = self.law.compiled.values(cols, self.theta(z, index)) - self.y[rows]
        out[~np.isfinite(out)] = self.penalty
        return np.clip(out, -self.penalty, self.penalty)

    def jacobian(self, z: FloatArray) -> FloatArray:
        jac = np.zeros((self.y.size, self.size))
        for index, (rows, cols) in enumerate(zip(self.rows, self.cols, strict=True)):
            _, full = self.law.compiled.values_and_jacobian(cols, self.theta(z, index))
            jac[rows, : self.n_shared] = full[:, self.shared_free]
            start = self.n_shared + index * self.n_own
            jac[np.ix_(rows, np.arange(start, start + self.n_own))] = full[:, self.own_free]
        jac[~np.isfinite(jac)] = 0.0
        return jac

    def result(self, z: FloatArray, message: str) -> GroupedFit:
        fits = {}
        for index, (name, rows, cols) in enumerate(zip(self.names, self.rows, self.cols, strict=True)):
            theta = self.theta(z, index)
            predicted = self.law.compiled.values(cols, theta)
            finite = bool(np.all(np.isfinite(predicted)))
            mse = float(np.mean((predicted - self.y[rows]) ** 2)) if finite else math.inf
            fits[name] = FitResult(theta if finite else None, finite, message, mse, 1 if finite else 0)
        return GroupedFit(fits)


def fit_shared(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    *,
    shared: frozenset[str],
    config: FitConfig,
    initial: Mapping[str, FloatArray] | None = None,
) -> GroupedFit:
    """Fit the constants in ``shared`` once for every group and the others per group.

    Parameters
    ----------
    law : Law
        The law.
    X, y, groups : ndarray
        Rows of shapes (n, d), (n,), (n,).
    shared : frozenset of str
        Names of the constants with one value for all groups; names that are not constants are ignored.
    config : FitConfig
        ``max_nfev`` bounds each start; ``n_starts`` sets how many groups' constants are tried as starts.
    initial : mapping of str to ndarray, optional
        Warm starts of the independent per-group fits that the joint fit starts from.

    Returns
    -------
    GroupedFit
        One result per group; shared constants are equal across groups. With fewer than two groups, nothing
        shared, or a group whose own fit failed, the independent per-group fit.
    """
    from scipy.optimize import least_squares

    from sld.search.warm_fits import fit_groups_warm, group_params

    groups = np.asarray(groups).astype(str)
    shared = frozenset(shared) & set(law.constant_names)
    # Independent per-group fits first: the joint fit starts from them, and they are the answer when nothing
    # can be shared.
    independent = fit_groups_warm(law, X, y, groups, config=config, initial=initial)
    params = group_params(independent)
    n_groups = len(np.unique(groups))
    if not shared or n_groups < 2 or len(params) < n_groups:
        return independent
    problem = _JointProblem(law, X, y, groups, shared)
    if problem.n_shared == 0:
        return independent
    stacked = np.vstack([params[name] for name in problem.names])
    # Starts: the median over groups of each shared constant, then the values of the largest groups.
    candidates = [np.median(stacked, axis=0)]
    largest = np.argsort([-rows.size for rows in problem.rows], kind="stable")
    candidates += [stacked[i] for i in largest[: max(0, min(config.n_starts // 3, 3))]]
    lower, upper = problem.bounds()
    best_cost, best_z, best_message = math.inf, None, ""
    with np.errstate(all="ignore"):
        for shared_values in candidates:
            z0 = np.clip(problem.pack(params, shared_values), lower, upper)
            try:
                result = least_squares(
                    problem.residuals,
                    z0,
                    jac=problem.jacobian,
                    bounds=(lower, upper),
                    method="trf",
                    max_nfev=config.max_nfev,
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if float(result.cost) < best_cost:
                best_cost, best_z, best_message = float(result.cost), result.x, str(result.message)
    if best_z is None:
        failed = FitResult(None, False, "no start of the shared fit gave finite predictions", math.inf, 0)
        return GroupedFit({name: failed for name in problem.names})
    return problem.result(best_z, f"shared {', '.join(sorted(shared))}: {best_message}")
