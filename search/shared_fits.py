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

from sld.search.batched_fits import DAMPING_START, REASONS, solve_systems
from sld.search.expressions import Law
from sld.search.fitting import FitConfig, FitResult, GroupedFit

FloatArray = NDArray[np.float64]

# Fits with at least this many starts also try the largest group's values as the shared constants.
JOINT_SECOND_START = 12
# The joint fit starts from the groups' own optima, so its first steps must be short: with the damping of a cold
# start (1e-3) a first Gauss-Newton step runs along the flat direction that a shared offset and every group's
# amplitude span together, and lands far from the optimum it started next to.
JOINT_FIRST_DAMPING = 1.0
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
    """Residuals and Jacobian over ``[shared free constants, then each group's own free constants]``.

    The compiled law accepts one value of each constant per row, so every evaluation covers all groups in one
    vectorised call: row ``r`` of group ``g`` sees the shared constants and the constants of ``g``.
    """

    def __init__(self, law: Law, X: FloatArray, y: FloatArray, groups: NDArray[np.str_], shared: frozenset[str]):
        self.law = law
        self.names = sorted({str(g) for g in groups})
        self.group_of_row = np.searchsorted(self.names, groups)
        self.cols = np.ascontiguousarray(X.T)
        self.y = y
        self.lower = np.array([c.lower for c in law.constants], dtype=float)
        self.upper = np.array([c.upper for c in law.constants], dtype=float)
        free = self.lower < self.upper
        is_shared = np.array([name in shared for name in law.constant_names])
        self.shared_free = free & is_shared
        self.own_free = free & ~is_shared
        self.n_shared, self.n_own = int(self.shared_free.sum()), int(self.own_free.sum())
        self.penalty = _PENALTY * (1.0 + float(np.max(np.abs(y))))
        # Where each row's derivatives land: the shared columns, then its own group's block.
        self.own_columns = self.n_shared + self.group_of_row[:, None] * self.n_own + np.arange(self.n_own)[None, :]
        shared_columns = np.broadcast_to(np.arange(self.n_shared), (y.size, self.n_shared))
        self._jac_cols = np.hstack([shared_columns, self.own_columns])
        self._jac_rows = np.broadcast_to(np.arange(y.size)[:, None], self._jac_cols.shape)

    @property
    def size(self) -> int:
        return self.n_shared + self.n_own * len(self.names)

    def pack(self, params: Mapping[str, FloatArray], shared_values: FloatArray) -> FloatArray:
        own = [np.asarray(params[name])[self.own_free] for name in self.names]
        return np.concatenate([shared_values[self.shared_free], *own])

    def group_theta(self, z: FloatArray) -> FloatArray:
        """Return the constants of every group, shape ``(groups, n_params)``; ``(b, groups, n_params)`` for b z's."""
        b = z.shape[:-1]
        # Fixed constants (lower == upper) keep their value.
        theta = np.broadcast_to(self.lower, (*b, len(self.names), self.lower.size)).copy()
        theta[..., self.shared_free] = z[..., None, : self.n_shared]
        theta[..., self.own_free] = z[..., self.n_shared :].reshape(*b, len(self.names), self.n_own)
        return theta

    def row_theta(self, z: FloatArray) -> FloatArray:
        return np.ascontiguousarray(self.group_theta(z)[self.group_of_row].T)

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        lower = [self.lower[self.shared_free]] + [self.lower[self.own_free]] * len(self.names)
        upper = [self.upper[self.shared_free]] + [self.upper[self.own_free]] * len(self.names)
        return np.concatenate(lower), np.concatenate(upper)

    def residuals(self, z: FloatArray) -> FloatArray:
        out = self.law.compiled.values(self.cols, self.row_theta(z)) - self.y
        out[~np.isfinite(out)] = self.penalty
        return np.clip(out, -self.penalty, self.penalty)

    def jacobian(self, z: FloatArray) -> FloatArray:
        _, per_row = self.law.compiled.values_and_jacobian(self.cols, self.row_theta(z))
        jac = np.zeros((self.y.size, self.size))
        jac[self._jac_rows, self._jac_cols] = np.hstack([per_row[:, self.shared_free], per_row[:, self.own_free]])
        jac[~np.isfinite(jac)] = 0.0
        return jac

    def system(self) -> _JointSystem:
        """Return the batched solver's view of starts of this problem (`_JointSystem`)."""
        return _JointSystem(self)

    def failed(self) -> GroupedFit:
        """Return the result of a joint fit none of whose starts gave finite predictions."""
        failed = FitResult(None, False, "no start of the shared fit gave finite predictions", math.inf, 0)
        return GroupedFit({name: failed for name in self.names})

    def result(self, z: FloatArray, message: str) -> GroupedFit:
        fits = {}
        predicted = self.law.compiled.values(self.cols, self.row_theta(z))
        for index, (name, theta) in enumerate(zip(self.names, self.group_theta(z), strict=True)):
            rows = self.group_of_row == index
            finite = bool(np.all(np.isfinite(predicted[rows])))
            mse = float(np.mean((predicted[rows] - self.y[rows]) ** 2)) if finite else math.inf
            fits[name] = FitResult(theta if finite else None, finite, message, mse, 1 if finite else 0)
        return GroupedFit(fits)


class _JointSystem:
    """Several starts of one `_JointProblem` as a `sld.search.batched_fits.ResidualSystem`.

    The joint Jacobian is mostly zeros: a row depends on the shared constants and on its own group's. It is kept
    compact, each row's derivatives by the shared constants then by its group's own ones, shape
    ``(n_shared + n_own, b, n)``, and `normal_equations` accumulates ``J^T J`` into its blocks row by row
    (`sld.search.lm_iteration.joint_normal_equations`, compiled): no dense ``(q, n) x (n, q)`` product, and no
    SVD as in ``scipy.optimize.least_squares``.
    """

    def __init__(self, problem: _JointProblem) -> None:
        self.problem = problem
        self.prepared = problem.law.compiled.prepare(problem.cols)
        self.indices = np.flatnonzero(problem.shared_free).tolist() + np.flatnonzero(problem.own_free).tolist()

    def _predict(self, theta: FloatArray, *, derive: bool) -> tuple[FloatArray, FloatArray | None]:
        problem = self.problem
        b, n = theta.shape[0], problem.y.size
        per_row = problem.group_theta(theta)[:, problem.group_of_row]  # (b, n, p)
        cols = np.broadcast_to(self.prepared[:, None, :], (self.prepared.shape[0], b, n))
        constants = per_row.transpose(2, 0, 1)
        if not derive:
            return problem.law.compiled.values(cols, constants, prepared=True), None
        return problem.law.compiled.values_and_gradients(cols, constants, self.indices, prepared=True)

    def evaluate(self, theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        pred, jac = self._predict(theta, derive=True)
        assert jac is not None
        penalty = self.problem.penalty
        residual = pred - self.problem.y[None, :]
        if not np.isfinite(residual).all():
            residual = np.clip(np.where(np.isfinite(residual), residual, penalty), -penalty, penalty)
        if not np.isfinite(jac).all():
            jac = np.where(np.isfinite(jac), jac, 0.0)
        return residual, jac, 0.5 * np.einsum("bm,bm->b", residual, residual)

    def normal_equations(self, jac: FloatArray, residual: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        from sld.search.lm_iteration import joint_normal_equations  # compiled; numba loads on the first fit

        problem = self.problem
        return joint_normal_equations(jac, residual, problem.group_of_row, problem.n_shared, len(problem.names))

    @property
    def arrow(self) -> tuple[int, int]:
        """The shared constants couple to every group; each group's own constants only to themselves."""
        return self.problem.n_shared, self.problem.n_own

    def subset(self, keep: NDArray[np.bool_]) -> _JointSystem:
        # Every start shares the problem's rows and holds no state of its own here: the same system serves them.
        return self

    def finite(self, theta: FloatArray) -> NDArray[np.bool_]:
        pred, _ = self._predict(theta, derive=False)
        finite: NDArray[np.bool_] = np.all(np.isfinite(pred), axis=1)
        return finite


def fit_shared(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    *,
    shared: frozenset[str],
    config: FitConfig,
    initial: Mapping[str, FloatArray] | None = None,
    independent: GroupedFit | None = None,
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
    independent : GroupedFit, optional
        Those per-group fits when already made (e.g. in one batch with other folds); ``initial`` is then unused.

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
    if independent is None:
        independent = fit_groups_warm(law, X, y, groups, config=config, initial=initial)
    params = group_params(independent)
    n_groups = len(np.unique(groups))
    if not shared or n_groups < 2 or len(params) < n_groups:
        return independent
    problem = _JointProblem(law, X, y, groups, shared)
    if problem.n_shared == 0:
        return independent
    stacked = np.vstack([params[name] for name in problem.names])
    # Starts: the median over groups of each shared constant, then (with many starts) the largest group's values.
    # Every start already sits near an optimum of each group, so one or two suffice; each costs a full solve.
    candidates = [np.median(stacked, axis=0)]
    if config.n_starts >= JOINT_SECOND_START:
        candidates.append(stacked[int(np.argmax(np.bincount(problem.group_of_row)))])
    lower, upper = problem.bounds()
    starts = [np.clip(problem.pack(params, shared_values), lower, upper) for shared_values in candidates]
    if config.solver == "batched":
        return _solve_joint_batched(problem, np.stack(starts), lower, upper, config, shared)
    best_cost, best_z, best_message = math.inf, None, ""
    with np.errstate(all="ignore"):
        for z0 in starts:
            try:
                result = least_squares(
                    problem.residuals,
                    z0,
                    jac=problem.jacobian,
                    bounds=(lower, upper),
                    method="trf",
                    x_scale="jac",  # per-group scales differ; without it the joint fit crawls
                    max_nfev=config.max_nfev,
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if float(result.cost) < best_cost:
                best_cost, best_z, best_message = float(result.cost), result.x, str(result.message)
    if best_z is None:
        return problem.failed()
    return problem.result(best_z, f"shared {', '.join(sorted(shared))}: {best_message}")


def _solve_joint_batched(
    problem: _JointProblem,
    starts: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    config: FitConfig,
    shared: frozenset[str],
) -> GroupedFit:
    """Solve every start of the joint problem in one batched Levenberg-Marquardt run; keep the best finite one."""
    # Every start twice: once with a cold start's damping, once with a short first step (`JOINT_FIRST_DAMPING`).
    dampings = np.repeat([DAMPING_START, JOINT_FIRST_DAMPING], len(starts))
    starts = np.vstack([starts, starts])
    with np.errstate(all="ignore"):
        solution = solve_systems(
            problem.system(),
            starts,
            lower=lower,
            upper=upper,
            max_iterations=config.max_nfev,
            first_damping=dampings,
        )
    if not np.isfinite(solution.cost).any():
        return problem.failed()
    best = int(np.argmin(solution.cost))
    message = (
        f"shared {', '.join(sorted(shared))}: {REASONS[int(solution.reason[best])]} "
        f"after {int(solution.iterations[best])} batched LM iterations"
    )
    with np.errstate(all="ignore"):
        return problem.result(solution.theta[best], message)
